package main

import (
	"bufio"
	"context"
	_ "embed"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// wrkScript gives every request of a wrk run its own bearer token (see the script).
//
//go:embed tokens.lua
var wrkScript string

// wrkThreads and wrkConnections size every maximum-rate run: two threads for the
// two cores, enough connections that the server is never idle. A constant-rate run
// spreads its rate over pacedConnections, each pausing between a response and its next
// request for connections/rate on average (the script draws each pause at random):
// with a pause many times a request's latency, the rate is the one asked for within a
// few percent (the table prints the one held).
const (
	wrkThreads       = 2
	wrkConnections   = 32
	pacedConnections = 128
)

// wrkSpec is one maximum-rate run.
type wrkSpec struct {
	name, url, method string
	// tokens is a file of bearer tokens, one a line; body, when not empty, a file
	// holding every request's JSON body.
	tokens, body string
	duration     time.Duration
	// rate, when not 0, paces the run at about this many requests a second.
	rate int
	// serverPID and redisPID are the processes whose CPU time the run reports per
	// request; 0 for none.
	serverPID, redisPID int
}

// runWrk runs wrk with the token script and parses the line its done() prints.
func runWrk(ctx context.Context, wrk, script string, s wrkSpec) (result, error) {
	conns := wrkConnections
	if s.rate > 0 {
		conns = pacedConnections
	}
	args := []string{"-t", strconv.Itoa(wrkThreads), "-c", strconv.Itoa(conns),
		"-d", s.duration.String(), "--timeout", "10s", "-s", script, s.url,
		"--", s.tokens, s.method, strconv.Itoa(wrkThreads), s.body}
	if s.rate > 0 {
		args = append(args, strconv.FormatFloat(pauseMillis(conns, s.rate), 'f', 4, 64))
	}
	cmd := exec.CommandContext(ctx, wrk, args...)
	server0, serverOK := cpuTime(s.serverPID)
	redis0, redisOK := cpuTime(s.redisPID)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return result{}, fmt.Errorf("wrk %s: %w: %s", s.name, err, out)
	}
	server1, serverOK1 := cpuTime(s.serverPID)
	redis1, redisOK1 := cpuTime(s.redisPID)
	r, err := parseWrk(string(out))
	if err != nil {
		return result{}, fmt.Errorf("wrk %s: %w", s.name, err)
	}
	r.Name = s.name
	r.Rate = r.Throughput
	r.ServerCPU = perRequest(server1-server0, serverOK && serverOK1, r.Requests)
	r.RedisCPU = perRequest(redis1-redis0, redisOK && redisOK1, r.Requests)
	r.GeneratorCPU = perRequest(cmd.ProcessState.UserTime()+cmd.ProcessState.SystemTime(), true, r.Requests)
	return r, nil
}

// pauseMillis is the pause of each of conns connections, in milliseconds, that makes
// them send rate requests a second together.
func pauseMillis(conns, rate int) float64 { return float64(conns) * 1000 / float64(rate) }

// parseWrk reads "wrk-result requests duration_us non2xx socket_errors p50_us p99_us
// wraps" from wrk's output.
func parseWrk(out string) (result, error) {
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 8 || f[0] != "wrk-result" {
			continue
		}
		var n [7]int64
		for i := range n {
			v, err := strconv.ParseInt(f[i+1], 10, 64)
			if err != nil {
				return result{}, fmt.Errorf("parsing %q: %w", sc.Text(), err)
			}
			n[i] = v
		}
		r := result{Requests: int(n[0]), Codes: map[string]int{}}
		if n[1] > 0 {
			r.Throughput = float64(n[0]) / (float64(n[1]) / 1e6)
		}
		if ok := n[0] - n[2]; ok > 0 {
			r.Codes["2xx"] = int(ok)
		}
		if n[2] > 0 {
			r.Codes["other"] = int(n[2])
		}
		if n[3] > 0 {
			r.Codes["socket-errors"] = int(n[3])
		}
		if n[0] > 0 {
			r.Success = float64(n[0]-n[2]) / float64(n[0])
		}
		r.Latencies.P50 = time.Duration(n[4]) * time.Microsecond
		r.Latencies.P99 = time.Duration(n[5]) * time.Microsecond
		r.Wraps = int(n[6])
		return r, nil
	}
	return result{}, fmt.Errorf("no result line in its output: %s", out)
}

// wrkVersion is the first line of `wrk -v` (which exits 1).
func wrkVersion(ctx context.Context, wrk string) string {
	out, _ := exec.CommandContext(ctx, wrk, "-v").CombinedOutput()
	line, _, _ := strings.Cut(string(out), "\n")
	if line == "" {
		return "wrk (version unknown)"
	}
	return strings.TrimSpace(strings.Split(line, " Copyright")[0])
}

// writeScript puts the token script where wrk can read it.
func writeScript(path string) error { return os.WriteFile(path, []byte(wrkScript), 0o644) }
