package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/hiringo/auth-operator/authserver/keyfiles"
	"github.com/hiringo/auth-operator/internal/devkeys"
	"github.com/hiringo/auth-operator/internal/testutil/redistest"
)

// options are the driver's flags.
type options struct {
	vegeta, wrk   string
	paced         string
	duration      time.Duration
	halfDuration  time.Duration
	benchtime     string
	rounds        int
	maxRate       int
	authserver    string
	baseline      string
	assets        string
	floorKind     string
	floorAddr     string
	floorKeys     string
	floorResponse string
}

func main() {
	var o options
	flag.StringVar(&o.paced, "paced", pacedWrk, "generator of the constant-rate runs: wrk (paced by the token script; the default, the cheaper per request) or vegeta")
	flag.StringVar(&o.vegeta, "vegeta", "bin/vegeta", "path of the vegeta binary (make vegeta installs the pinned one), for -paced vegeta")
	flag.StringVar(&o.wrk, "wrk", "wrk", "path of Debian's wrk (make wrk installs it): the maximum-rate runs, and the constant-rate runs unless -paced vegeta")
	flag.DurationVar(&o.duration, "duration", 4*time.Second, "length of each maximum-rate run")
	flag.DurationVar(&o.halfDuration, "half-duration", 3*time.Second, "length of each constant-rate run at half the maximum rate")
	flag.StringVar(&o.benchtime, "benchtime", "2s", "-test.benchtime of each Go benchmark run")
	flag.IntVar(&o.rounds, "rounds", 2, "rounds of every comparison: A B A B for 2")
	flag.IntVar(&o.maxRate, "max-rate", 12000, "upper bound of any unique-token run's rate, which sizes each run's token supply")
	flag.StringVar(&o.authserver, "authserver", "", "auth server binary (built from ./cmd/authserver when empty)")
	flag.StringVar(&o.baseline, "baseline", "", "a commit of this checkout (main before the first release, in make bench) whose logout, refresh and issuance Go benchmarks run beside this tree's, alternately; empty for none")
	flag.StringVar(&o.assets, "control-plane-dir", "bin", "directory of kube-apiserver and etcd (make controlplane), for the issuer's TokenReviews")
	flag.StringVar(&o.floorKind, "floor", "", "internal: serve a floor server of this kind (plain, verify, sign)")
	flag.StringVar(&o.floorAddr, "listen", "", "internal: floor server address")
	flag.StringVar(&o.floorKeys, "keys-dir", "", "internal: floor server key directory")
	flag.StringVar(&o.floorResponse, "response", "", "internal: the plain floor's recorded response")
	flag.Parse()
	if o.floorKind != "" {
		if err := runFloor(o.floorKind, o.floorAddr, o.floorKeys, o.floorResponse); err != nil {
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

// The generators of the constant-rate runs (-paced).
const (
	pacedWrk    = "wrk"
	pacedVegeta = "vegeta"
)

// servers are the processes a run drives.
type servers struct {
	url map[string]string
	pid map[string]int
}

// run starts every server, runs the comparisons and prints the table.
func run(ctx context.Context, o options, out io.Writer) error {
	switch o.paced {
	case pacedWrk:
	case pacedVegeta:
		if _, err := os.Stat(o.vegeta); err != nil {
			return fmt.Errorf("vegeta not found at %s (run make vegeta): %w", o.vegeta, err)
		}
	default:
		return fmt.Errorf("-paced %q: use %s or %s", o.paced, pacedWrk, pacedVegeta)
	}
	wrk, err := exec.LookPath(o.wrk)
	if err != nil {
		return fmt.Errorf("wrk not found (run make wrk): %w", err)
	}
	startLoad := loadAverage()
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
	if err := devkeys.WriteDir(keysDir, set); err != nil {
		return err
	}
	bin := o.authserver
	if bin == "" {
		bin = filepath.Join(work, "authserver")
		fmt.Fprintln(out, "building ./cmd/authserver and the httpapi benchmarks")
		if b, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/authserver").CombinedOutput(); err != nil {
			return fmt.Errorf("building the auth server: %w: %s", err, b)
		}
	}
	benchBin := filepath.Join(work, "httpapi.test")
	if b, err := exec.CommandContext(ctx, "go", "test", "-c", "-o", benchBin, "./authserver/httpapi").CombinedOutput(); err != nil {
		return fmt.Errorf("building the httpapi benchmarks: %w: %s", err, b)
	}
	benchDir, err := filepath.Abs("authserver/httpapi")
	if err != nil {
		return err
	}
	var base *baseline
	if o.baseline != "" {
		fmt.Fprintf(out, "building the httpapi benchmarks of %s\n", o.baseline)
		b, err := buildBaseline(ctx, o.baseline, work)
		if err != nil {
			return err
		}
		base = &b
	}
	fmt.Fprintln(out, "starting kube-apiserver and etcd for the issuer's and the introspecting verifier's TokenReviews")
	kube, err := startKube(ctx, o.assets, work)
	if err != nil {
		return err
	}
	defer kube.stop()

	self, err := os.Executable()
	if err != nil {
		return err
	}
	srv := servers{url: map[string]string{}, pid: map[string]int{}}
	start := func(name, path string, env []string, args ...string) error {
		addr, err := freeAddr()
		if err != nil {
			return err
		}
		// An auth server answers /readyz on its own admin port; a floor has none.
		admin := ""
		listen := "-listen"
		if path != self {
			if admin, err = freeAddr(); err != nil {
				return err
			}
			env = append(env, "AUTHSERVER_ADMIN_LISTEN="+admin)
			listen = "--listen"
		}
		cmd := exec.CommandContext(ctx, path, append(args, listen, addr)...)
		cmd.Env = append(os.Environ(), env...)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("starting %s: %w", name, err)
		}
		go func() { _ = cmd.Wait() }()
		srv.url[name] = "http://" + addr
		srv.pid[name] = cmd.Process.Pid
		if admin == "" {
			return waitUp("http://"+addr, name, false)
		}
		srv.url[name+"-admin"] = "http://" + admin
		return waitUp("http://"+admin, name, true)
	}
	serverEnv := func(prefix string) []string {
		return []string{
			"AUTHSERVER_KEYS_DIR=" + keysDir,
			"AUTHSERVER_REDIS_ADDRS=" + redis.Addr,
			"AUTHSERVER_REDIS_KEY_PREFIX=" + prefix,
			"AUTHSERVER_LOG_LEVEL=error",
		}
	}
	for _, s := range []struct {
		name, path string
		env        []string
		args       []string
	}{
		{"verifier", bin, serverEnv("load:"), []string{"serve", "--role", "verifier", "--kubeconfig", kube.kubeconfig,
			"--client-audience", issuerAudience, "--introspection-clients", gatewayNamespace + "/" + gatewayServiceAccount}},
		{"issuer", bin, serverEnv("load:"), []string{"serve", "--role", "issuer", "--kubeconfig", kube.kubeconfig,
			"--client-audience", issuerAudience, "--issuance-clients", loginNamespace + "/" + loginServiceAccount}},
		{"crypto", self, nil, []string{"-floor", floorVerify, "-keys-dir", keysDir}},
		{"sign", self, nil, []string{"-floor", floorSign, "-keys-dir", keysDir}},
	} {
		if err := start(s.name, s.path, s.env, s.args...); err != nil {
			return err
		}
	}

	fmt.Fprintln(out, "signing tokens")
	sup, err := newSupplies(set, work, o)
	if err != nil {
		return err
	}
	// The plain floor answers what a cache hit answers: recorded from the verifier
	// once its cache holds the recurring tokens.
	rec, err := warmAndRecord(srv.url["verifier"], srv.url["verifier-admin"], sup.recurring)
	if err != nil {
		return err
	}
	responseFile := filepath.Join(work, "verify-response.json")
	if err := writeJSON(responseFile, rec); err != nil {
		return err
	}
	if err := start("plain", self, nil, "-floor", floorPlain, "-response", responseFile); err != nil {
		return err
	}

	constant := fmt.Sprintf("the same wrk, %d connections, each pausing between a response and its next request", pacedConnections)
	if o.paced == pacedVegeta {
		constant = "vegeta " + vegetaVersion(ctx, o.vegeta)
	}
	fmt.Fprintf(out, "generators: maximum rate: %s, %d threads, %d connections, a Lua script giving each request its own token; constant rate: %s\n",
		wrkVersion(ctx, wrk), wrkThreads, wrkConnections, constant)
	fmt.Fprintf(out, "every comparison alternates A (the auth server) and B (its floor), %d rounds; maximum-rate runs %s, constant-rate runs %s; load average %s\n",
		o.rounds, o.duration, o.halfDuration, startLoad)
	b := bench{ctx: ctx, o: o, wrk: wrk, script: filepath.Join(work, "tokens.lua"), work: work, srv: srv, redisPID: redis.Pid(), sup: sup, out: out, gateway: kube.gatewayToken}
	if err := writeScript(b.script); err != nil {
		return err
	}
	rep, err := b.runAll(benchBin, benchDir, kube.loginToken, base)
	if err != nil {
		return err
	}
	rep.print(out)
	fmt.Fprintf(out, "load average at the start %s, at the end %s (the floors, servers, Redis, kube-apiserver and the generators share this machine's cores)\n", startLoad, loadAverage())
	return nil
}

// warmAndRecord waits until the verifier's cache is trusted, checks every recurring
// token once (they are then cached) and returns its answer to one of them, less the
// headers net/http sets itself.
func warmAndRecord(base, admin string, toks []string) (recorded, error) {
	deadline := time.Now().Add(15 * time.Second)
	for !metricIs(admin, "authserver_verify_cache_trusted 1") {
		if time.Now().After(deadline) {
			return recorded{}, fmt.Errorf("the verifier's cache never became trusted")
		}
		time.Sleep(50 * time.Millisecond)
	}
	var rec recorded
	for _, tok := range toks {
		req, err := http.NewRequest(http.MethodGet, base+"/auth/verify", nil)
		if err != nil {
			return recorded{}, err
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return recorded{}, err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return recorded{}, err
		}
		if resp.StatusCode != http.StatusOK {
			return recorded{}, fmt.Errorf("warming the cache: verify answered %d: %s", resp.StatusCode, body)
		}
		h := resp.Header.Clone()
		h.Del("Date")
		h.Del("Content-Length")
		rec = recorded{Status: resp.StatusCode, Header: h, Body: body}
	}
	return rec, nil
}

// metricIs reports whether the admin port's /metrics has line.
func metricIs(admin, line string) bool {
	resp, err := http.Get(admin + "/metrics")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return err == nil && strings.Contains(string(b), "\n"+line+"\n")
}

func vegetaVersion(ctx context.Context, vegeta string) string {
	out, err := exec.CommandContext(ctx, vegeta, "-version").Output()
	if err != nil {
		return "(version unknown)"
	}
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, "Version: "); ok {
			return strings.TrimSpace(v)
		}
	}
	return strings.TrimSpace(string(out))
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
