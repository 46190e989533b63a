package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// maxConstantRateWorkers bounds vegeta's workers in a constant-rate run.
const maxConstantRateWorkers = 64

// attackSpec is one vegeta run (the constant-rate runs).
type attackSpec struct {
	name     string
	targets  string
	lazy     bool
	rate     int
	duration time.Duration
	workers  int
	// serverPID and redisPID are the processes whose CPU time the run reports
	// per request; 0 for none.
	serverPID, redisPID int
}

// result is what the table prints of one run.
type result struct {
	Name       string
	Requests   int            `json:"requests"`
	Rate       float64        `json:"rate"`
	Throughput float64        `json:"throughput"`
	Success    float64        `json:"success"`
	Codes      map[string]int `json:"status_codes"`
	Latencies  struct {
		P50 time.Duration `json:"50th"`
		P99 time.Duration `json:"99th"`
		Max time.Duration `json:"max"`
	} `json:"latencies"`
	// CPU time per request, in microseconds, of the server, Redis and the generator.
	ServerCPU, RedisCPU, GeneratorCPU string
	// Wraps counts how often a wrk thread started its tokens over.
	Wraps int
}

// attack runs vegeta against spec and parses its JSON report.
func attack(ctx context.Context, vegeta, workDir string, spec attackSpec) (result, error) {
	out := filepath.Join(workDir, strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, strings.ToLower(spec.name))+".bin")
	args := []string{"attack",
		"-format=json", "-targets=" + spec.targets,
		"-duration=" + spec.duration.String(),
		"-rate=" + strconv.Itoa(spec.rate) + "/1s",
		"-http2=false", "-keepalive=true",
		"-timeout=10s",
		// Bodies are not kept: copying them into every result costs vegeta CPU that
		// the server being measured then lacks.
		"-max-body=0",
		"-output=" + out,
	}
	if spec.lazy {
		args = append(args, "-lazy")
	}
	if spec.rate == 0 {
		args = append(args, "-max-workers="+strconv.Itoa(spec.workers), "-workers="+strconv.Itoa(spec.workers))
	} else {
		// A vegeta that falls behind its rate would otherwise start a worker (and a
		// connection) per late request, and time its own backlog rather than the
		// server: bounded, it sends less, which the table then reports.
		args = append(args, "-max-workers="+strconv.Itoa(maxConstantRateWorkers))
	}
	cmd := exec.CommandContext(ctx, vegeta, args...)
	server0, serverOK := cpuTime(spec.serverPID)
	redis0, redisOK := cpuTime(spec.redisPID)
	if b, err := cmd.CombinedOutput(); err != nil {
		return result{}, fmt.Errorf("vegeta attack %s: %w: %s", spec.name, err, b)
	}
	server1, serverOK1 := cpuTime(spec.serverPID)
	redis1, redisOK1 := cpuTime(spec.redisPID)
	vegetaCPU := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	b, err := exec.CommandContext(ctx, vegeta, "report", "-type=json", out).Output()
	if err != nil {
		return result{}, fmt.Errorf("vegeta report %s: %w", spec.name, err)
	}
	var r result
	if err := json.Unmarshal(b, &r); err != nil {
		return result{}, fmt.Errorf("parsing vegeta report: %w", err)
	}
	r.Name = spec.name
	r.ServerCPU = perRequest(server1-server0, serverOK && serverOK1, r.Requests)
	r.RedisCPU = perRequest(redis1-redis0, redisOK && redisOK1, r.Requests)
	r.GeneratorCPU = perRequest(vegetaCPU, true, r.Requests)
	return r, nil
}

// codes renders the status code counts, e.g. "200:51234 401:3".
func (r result) codes() string {
	keys := make([]string, 0, len(r.Codes))
	for k := range r.Codes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+":"+strconv.Itoa(r.Codes[k]))
	}
	return strings.Join(parts, " ")
}
