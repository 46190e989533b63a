package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"text/tabwriter"
	"time"

	"github.com/hiringo/auth-operator/authserver/keyfiles"
	"github.com/hiringo/auth-operator/authserver/redistest"
)

// options are the driver's flags.
type options struct {
	vegeta     string
	duration   time.Duration
	workers    int
	maxRate    int
	floorKind  string
	floorAddr  string
	floorKeys  string
	authserver string
}

func main() {
	var o options
	flag.StringVar(&o.vegeta, "vegeta", "bin/vegeta", "path of the vegeta binary (make vegeta installs the pinned one)")
	flag.DurationVar(&o.duration, "duration", 5*time.Second, "length of each scenario")
	flag.IntVar(&o.workers, "workers", 32, "concurrent vegeta workers for the maximum-rate scenarios")
	flag.IntVar(&o.maxRate, "max-logout-rate", 20000, "upper bound of the logout rate, which sizes the unique-token supply")
	flag.StringVar(&o.authserver, "authserver", "", "auth server binary (built from ./cmd/authserver when empty)")
	flag.StringVar(&o.floorKind, "floor", "", "internal: serve a floor server of this kind (plain, verify)")
	flag.StringVar(&o.floorAddr, "listen", "", "internal: floor server address")
	flag.StringVar(&o.floorKeys, "keys-dir", "", "internal: floor server key directory")
	flag.Parse()
	if o.floorKind != "" {
		if err := runFloor(o.floorKind, o.floorAddr, o.floorKeys); err != nil {
			fmt.Fprintln(os.Stderr, "floor:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(context.Background(), o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
}

// run starts every server, runs the scenarios and prints the table.
func run(ctx context.Context, o options, out io.Writer) error {
	if _, err := os.Stat(o.vegeta); err != nil {
		return fmt.Errorf("vegeta not found at %s (run make vegeta): %w", o.vegeta, err)
	}
	work, err := os.MkdirTemp("", "authserver-load-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	redisDir := filepath.Join(work, "redis")
	if err := os.Mkdir(redisDir, 0o755); err != nil {
		return err
	}
	redis, err := redistest.New(redisDir, redistest.Options{})
	if err != nil {
		return err
	}
	defer redis.Stop()

	keysDir := filepath.Join(work, "keys")
	set, err := keyfiles.NewSet(time.Now())
	if err != nil {
		return err
	}
	if err := keyfiles.WriteDir(keysDir, set); err != nil {
		return err
	}
	bin := o.authserver
	if bin == "" {
		bin = filepath.Join(work, "authserver")
		fmt.Fprintln(out, "building ./cmd/authserver")
		if b, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/authserver").CombinedOutput(); err != nil {
			return fmt.Errorf("building the auth server: %w: %s", err, b)
		}
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}

	servers := map[string]string{}
	pids := map[string]int{}
	start := func(name, path, listenFlag string, env []string, args ...string) error {
		addr, err := freeAddr()
		if err != nil {
			return err
		}
		// An auth server answers /readyz on its own admin port; a floor has none.
		readyBase := ""
		if path != self {
			adminAddr, err := freeAddr()
			if err != nil {
				return err
			}
			env = append(env, "AUTHSERVER_ADMIN_LISTEN="+adminAddr)
			readyBase = "http://" + adminAddr
		}
		cmd := exec.CommandContext(ctx, path, append(args, listenFlag, addr)...)
		cmd.Env = append(os.Environ(), env...)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("starting %s: %w", name, err)
		}
		go func() { _ = cmd.Wait() }()
		servers[name] = "http://" + addr
		pids[name] = cmd.Process.Pid
		if readyBase == "" {
			return waitUp("http://"+addr, name, false)
		}
		return waitUp(readyBase, name, true)
	}
	serverEnv := func(cacheSize, prefix string) []string {
		return []string{
			"AUTHSERVER_KEYS_DIR=" + keysDir,
			"AUTHSERVER_REDIS_ADDRS=" + redis.Addr,
			"AUTHSERVER_REDIS_KEY_PREFIX=" + prefix,
			"AUTHSERVER_LOG_LEVEL=error",
			"AUTHSERVER_VERIFY_CACHE_SIZE=" + cacheSize,
		}
	}
	if err := start("plain", self, "-listen", nil, "-floor", floorPlain); err != nil {
		return err
	}
	if err := start("crypto", self, "-listen", nil, "-floor", floorVerify, "-keys-dir", keysDir); err != nil {
		return err
	}
	if err := start("cache-off", bin, "--listen", serverEnv("0", "load-off:"), "serve"); err != nil {
		return err
	}
	if err := start("cache-on", bin, "--listen", serverEnv("100000", "load-on:"), "serve"); err != nil {
		return err
	}

	fmt.Fprintln(out, "signing tokens")
	recurring, err := issueTokens(set, "recurring", 1000)
	if err != nil {
		return err
	}
	logoutSupply := int(float64(o.maxRate) * o.duration.Seconds())
	unique, err := issueTokens(set, "logout", logoutSupply)
	if err != nil {
		return err
	}
	files := map[string]error{
		"plain":       writeTargets(filepath.Join(work, "plain.json"), http.MethodGet, servers["plain"]+"/", recurring),
		"crypto-uniq": writeTargets(filepath.Join(work, "crypto-unique.json"), http.MethodPost, servers["crypto"]+"/", unique),
		"crypto":      writeTargets(filepath.Join(work, "crypto.json"), http.MethodGet, servers["crypto"]+"/", recurring),
		"logout":      writeTargets(filepath.Join(work, "logout.json"), http.MethodPost, servers["cache-off"]+"/auth/logout", unique),
		"verify-off":  writeTargets(filepath.Join(work, "verify-off.json"), http.MethodGet, servers["cache-off"]+"/auth/verify", recurring),
		"verify-on":   writeTargets(filepath.Join(work, "verify-on.json"), http.MethodGet, servers["cache-on"]+"/auth/verify", recurring),
	}
	if err := errors.Join(files["plain"], files["crypto-uniq"], files["crypto"], files["logout"], files["verify-off"], files["verify-on"]); err != nil {
		return fmt.Errorf("writing targets: %w", err)
	}

	spec := func(name, file, server string, lazy bool, rate int) attackSpec {
		s := attackSpec{name: name, targets: filepath.Join(work, file), lazy: lazy, rate: rate,
			duration: o.duration, workers: o.workers, serverPID: pids[server]}
		if server == "cache-off" || server == "cache-on" {
			s.redisPID = redis.Pid()
		}
		return s
	}
	maxRun := func(name, file, server string, lazy bool) (result, error) {
		return attack(ctx, o.vegeta, work, spec(name, file, server, lazy, 0))
	}
	var results []result
	add := func(r result, err error) error {
		if err != nil {
			return err
		}
		results = append(results, r)
		fmt.Fprintf(out, "  done: %s\n", r.Name)
		return nil
	}
	fmt.Fprintf(out, "running scenarios, %s each, %d workers at maximum rate; load average %s\n", o.duration, o.workers, loadAverage())
	if err := add(maxRun("HTTP floor: plain 200", "plain.json", "plain", false)); err != nil {
		return err
	}
	if err := add(maxRun("crypto+HTTP floor: ES256 verify, 1000 tokens", "crypto.json", "crypto", false)); err != nil {
		return err
	}
	if err := add(maxRun("crypto+HTTP floor: ES256 verify, unique tokens", "crypto-unique.json", "crypto", true)); err != nil {
		return err
	}
	logoutMax, err := maxRun("logout, unique tokens, max rate", "logout.json", "cache-off", true)
	if err := add(logoutMax, err); err != nil {
		return err
	}
	if logoutMax.Requests >= logoutSupply {
		fmt.Fprintf(out, "  warning: the logout run used all %d tokens; raise -max-logout-rate\n", logoutSupply)
	}
	half := int(logoutMax.Throughput / 2)
	if half < 1 {
		half = 1
	}
	halfUnique, err := issueTokens(set, "logout-half", int(float64(half)*o.duration.Seconds()*1.2)+10)
	if err != nil {
		return err
	}
	if err := writeTargets(filepath.Join(work, "logout-half.json"), http.MethodPost, servers["cache-off"]+"/auth/logout", halfUnique); err != nil {
		return err
	}
	if err := writeTargets(filepath.Join(work, "crypto-half.json"), http.MethodPost, servers["crypto"]+"/", halfUnique); err != nil {
		return err
	}
	if err := add(attack(ctx, o.vegeta, work, spec(fmt.Sprintf("logout, unique tokens, at %d/s (half of max)", half), "logout-half.json", "cache-off", true, half))); err != nil {
		return err
	}
	if err := add(attack(ctx, o.vegeta, work, spec(fmt.Sprintf("crypto+HTTP floor, unique tokens, at %d/s", half), "crypto-half.json", "crypto", true, half))); err != nil {
		return err
	}
	if err := add(maxRun("verify, 1000 recurring tokens, cache off", "verify-off.json", "cache-off", false)); err != nil {
		return err
	}
	if err := add(maxRun("verify, 1000 recurring tokens, cache on", "verify-on.json", "cache-on", false)); err != nil {
		return err
	}
	printTable(out, results)
	fmt.Fprintf(out, "load average at the end: %s (the floors, servers, Redis and vegeta share this machine's %d cores)\n", loadAverage(), runtime.NumCPU())
	return nil
}

func printTable(out io.Writer, rs []result) {
	fmt.Fprintln(out)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\treq/s\tp50\tp99\tsuccess\tcodes\tCPU µs/req: server\tredis\tvegeta\t")
	for _, r := range rs {
		fmt.Fprintf(tw, "%s\t%.0f\t%s\t%s\t%.2f%%\t%s\t%s\t%s\t%s\t\n", r.Name, r.Throughput, ms(r.Latencies.P50), ms(r.Latencies.P99), 100*r.Success, r.codes(), r.ServerCPU, r.RedisCPU, r.VegetaCPU)
	}
	tw.Flush()
	byName := func(prefix string) result {
		for _, r := range rs {
			if len(r.Name) >= len(prefix) && r.Name[:len(prefix)] == prefix {
				return r
			}
		}
		return result{}
	}
	plain, crypto := byName("HTTP floor"), byName("crypto+HTTP floor: ES256 verify, 1000")
	cryptoUnique := byName("crypto+HTTP floor: ES256 verify, unique")
	logout, half := byName("logout, unique tokens, max"), byName("logout, unique tokens, at")
	floorHalf := byName("crypto+HTTP floor, unique tokens, at")
	off, on := byName("verify, 1000 recurring tokens, cache off"), byName("verify, 1000 recurring tokens, cache on")
	fmt.Fprintln(out)
	fmt.Fprintf(out, "logout / crypto+HTTP floor req/s (both unique tokens): %.2fx (target >= 0.9x)\n", ratio(logout.Throughput, cryptoUnique.Throughput))
	fmt.Fprintf(out, "logout p99 at half of its maximum rate: %s (target <= 2ms); the crypto+HTTP floor at that rate: %s\n", ms(half.Latencies.P99), ms(floorHalf.Latencies.P99))
	fmt.Fprintf(out, "verify cache on / cache off req/s: %.2fx (target >= 4x)\n", ratio(on.Throughput, off.Throughput))
	fmt.Fprintf(out, "verify cache on / HTTP floor req/s: %.2fx (target >= 0.6x)\n", ratio(on.Throughput, plain.Throughput))
	fmt.Fprintf(out, "verify cache off / crypto+HTTP floor req/s: %.2fx\n", ratio(off.Throughput, crypto.Throughput))
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.3fms", float64(d)/float64(time.Millisecond))
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// waitUp waits until a server answers on base: /readyz with 200 when needReady,
// any answer otherwise (the floors have no readiness endpoint).
func waitUp(base, name string, needReady bool) error {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || !needReady {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s did not become ready on %s", name, base)
}
