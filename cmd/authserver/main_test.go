package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/hiringo/auth-operator/internal/serverenv"
	"github.com/hiringo/auth-operator/internal/testutil/loopback"
	"github.com/hiringo/auth-operator/internal/testutil/poll"
	"github.com/hiringo/auth-operator/internal/testutil/redistest"
)

// run executes the command tree with args and returns its output.
func run(t *testing.T, ctx context.Context, args ...string) (string, error) {
	t.Helper()
	cmd := newRootCommand()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(io.Discard)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(ctx)
	return out.String(), err
}

// TestServe_GeneratedKeysIssuedTokenLogout runs the three commands as an operator would
// locally: generate keys, serve them from the environment, issue a token and log it
// out; then SIGTERM-style cancellation drains and returns cleanly. Each step is a case
// of its own; a step that fails ends the run, as the next ones build on it.
func TestServe_GeneratedKeysIssuedTokenLogout(t *testing.T) {
	redis := redistest.Start(t, redistest.Options{Password: "pw"})
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	var tok string
	runSteps(t, []step{
		{"keys generate lays a key set out as a mounted Secret", func(t *testing.T) {
			out, err := run(t, context.Background(), "keys", "generate", "--dir", keys)
			if err != nil || !strings.Contains(out, "active ") {
				t.Fatalf("keys generate: %q, %v", out, err)
			}
			if _, err := os.Readlink(filepath.Join(keys, "..data")); err != nil {
				t.Fatalf("generated keys are not laid out as a mounted Secret: %v", err)
			}
		}},
		{"a second keys generate needs --force", func(t *testing.T) {
			if _, err := run(t, context.Background(), "keys", "generate", "--dir", keys); err == nil || !strings.Contains(err.Error(), "--force") {
				t.Fatalf("second generate without --force: err = %v", err)
			}
		}},
		{"token issue signs a token", func(t *testing.T) {
			out, err := run(t, context.Background(), "token", "issue", "--keys-dir", keys, "--user-id", "u-1", "--email", "u@example.com", "--ttl", "5m")
			if err != nil {
				t.Fatal(err)
			}
			tok = strings.TrimSpace(out)
		}},
	})
	pwFile := filepath.Join(dir, "password")
	if err := os.WriteFile(pwFile, []byte("pw"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr, adminAddr := loopback.FreeAddr(t), loopback.FreeAddr(t)
	t.Setenv("AUTHSERVER_LISTEN", addr)
	t.Setenv("AUTHSERVER_ADMIN_LISTEN", adminAddr)
	t.Setenv("AUTHSERVER_KEYS_DIR", keys)
	t.Setenv("AUTHSERVER_REDIS_ADDRS", redis.Addr)
	t.Setenv("AUTHSERVER_REDIS_PASSWORD_FILE", pwFile)
	t.Setenv("AUTHSERVER_LOG_LEVEL", "error")
	t.Setenv("AUTHSERVER_SHUTDOWN_TIMEOUT", "2s")
	t.Setenv("AUTHSERVER_SHUTDOWN_DELAY", "1s")
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	done := make(chan error, 1)
	go func() {
		_, err := run(t, ctx, "serve")
		done <- err
	}()
	base, admin := "http://"+addr, "http://"+adminAddr
	waitReady(t, admin+"/readyz", done)
	runSteps(t, []step{
		{"the API port, which the Service exposes, serves neither probes nor metrics", func(t *testing.T) {
			for _, path := range []string{"/readyz", "/healthz", "/metrics"} {
				resp, err := http.Get(base + path)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusNotFound {
					t.Errorf("API port %s: %d, want 404", path, resp.StatusCode)
				}
			}
		}},
		{"logout of the issued token answers the seed's envelope", func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, base+"/auth/logout", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || string(body) != `{"success":true,"message":"Success","payload":{"id":"u-1"}}` {
				t.Fatalf("logout: %d %s", resp.StatusCode, body)
			}
		}},
		{"headers beyond the server's 32 KiB limit are refused before any handler runs", func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, base+"/auth/verify", nil)
			req.Header.Set("Authorization", "Bearer "+strings.Repeat("a", 64<<10))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
				t.Fatalf("64 KiB header: status %d, want 431", resp.StatusCode)
			}
		}},
		{"cancellation drains: unready during the shutdown delay, then serve returns nil", func(t *testing.T) {
			cancel()
			// During the shutdown delay the server still answers, but is no longer ready.
			poll.UntilTrue(t, time.Second, "/readyz unready after SIGTERM", func() bool {
				resp, err := http.Get(admin + "/readyz")
				if err != nil {
					t.Fatalf("server stopped answering during the shutdown delay: %v", err)
				}
				resp.Body.Close()
				return resp.StatusCode == http.StatusServiceUnavailable
			})
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("serve returned %v after cancellation", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("serve did not stop")
			}
		}},
	})
}

// step is one named step of a scenario test.
type step struct {
	name string
	run  func(t *testing.T)
}

// runSteps runs steps in order, each as a subtest; one that fails ends t, as the next
// ones build on it.
func runSteps(t *testing.T, steps []step) {
	t.Helper()
	for _, s := range steps {
		if !t.Run(s.name, s.run) {
			t.FailNow()
		}
	}
}

// TestServe_VerifyCacheSizeZeroTurnsTheCacheOff starts the server with and without the
// cache and looks for the cache's series in /metrics.
func TestServe_VerifyCacheSizeZeroTurnsTheCacheOff(t *testing.T) {
	redis := redistest.Start(t, redistest.Options{})
	keys := filepath.Join(t.TempDir(), "keys")
	if _, err := run(t, context.Background(), "keys", "generate", "--dir", keys); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		size      string
		wantCache bool
	}{{"0", false}, {"1000", true}} {
		_, adminAddr, stop := startServe(t, "--keys-dir", keys, "--redis-addrs", redis.Addr, "--verify-cache-size", tc.size)
		resp, err := http.Get("http://" + adminAddr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if got := strings.Contains(string(body), "authserver_verify_cache_lookups_total"); got != tc.wantCache {
			t.Errorf("--verify-cache-size %s: cache series present = %v, want %v", tc.size, got, tc.wantCache)
		}
		if err := stop(); err != nil {
			t.Fatalf("serve: %v", err)
		}
		assertNoServeGoroutines(t)
	}
}

// assertNoServeGoroutines fails when a goroutine that serve starts outlived it.
func assertNoServeGoroutines(t *testing.T) {
	t.Helper()
	buf := make([]byte, 1<<20)
	stacks := string(buf[:runtime.Stack(buf, true)])
	for _, fn := range []string{
		"keyset.(*Store).Run", "verifycache.(*Cache).Follow", "roles.untilAnswered", "blacklist.(*Store).Follow",
		"blacklist.(*pipeline).work", "net/http.(*Server).Serve",
	} {
		if strings.Contains(stacks, fn) {
			t.Errorf("%s still runs after serve returned", fn)
		}
	}
}

// startServe runs `authserver serve` in the test's process on free loopback ports, with
// args after the listen addresses and the quiet, quick-shutdown settings every test uses,
// and waits until /readyz answers. stop cancels it and returns serve's error; cleanup
// calls it too.
func startServe(t *testing.T, args ...string) (addr, adminAddr string, stop func() error) {
	t.Helper()
	addr, adminAddr = loopback.FreeAddr(t), loopback.FreeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	early := make(chan error, 1)
	finished := make(chan struct{})
	var result error
	go func() {
		defer close(finished)
		_, result = run(t, ctx, append([]string{"serve", "--listen", addr, "--admin-listen", adminAddr,
			"--log-level", "error", "--shutdown-delay", "0s", "--shutdown-timeout", "2s"}, args...)...)
		early <- result
	}()
	stop = sync.OnceValue(func() error {
		cancel()
		<-finished
		return result
	})
	t.Cleanup(func() { _ = stop() })
	waitReady(t, "http://"+adminAddr+"/readyz", early)
	return addr, adminAddr, stop
}

func waitReady(t *testing.T, url string, done <-chan error) {
	t.Helper()
	poll.Until(t, 10*time.Second, "server ready at "+url, func() error {
		select {
		case err := <-done:
			t.Fatalf("serve exited early: %v", err)
		default:
		}
		resp, err := http.Get(url)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	})
}

func TestServe_BadSettingsAreClearErrors(t *testing.T) {
	cases := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"env value that does not parse", map[string]string{"AUTHSERVER_LEEWAY": "soon"}, nil, `invalid value "soon" for AUTHSERVER_LEEWAY`},
		{"negative leeway", nil, []string{"--leeway", "-1s"}, "--leeway must not be negative"},
		{"tiny token limit", nil, []string{"--max-token-bytes", "10"}, "--max-token-bytes must be at least 64"},
		{"unknown log level", nil, []string{"--log-level", "loud"}, "--log-level"},
		{"database on a cluster", map[string]string{"AUTHSERVER_REDIS_ADDRS": "a:1,b:2", "AUTHSERVER_REDIS_DB": "3"}, nil, "--redis-db must be 0 for a Redis Cluster"},
		{"negative replica acks", nil, []string{"--redis-min-replicas-acked", "-1"}, "--redis-min-replicas-acked must not be negative"},
		{"replica acks on a cluster", map[string]string{"AUTHSERVER_REDIS_ADDRS": "a:1,b:2", "AUTHSERVER_REDIS_MIN_REPLICAS_ACKED": "1"}, nil, "--redis-min-replicas-acked needs a single Redis or Sentinel"},
		{"unknown Redis mode", nil, []string{"--redis-mode", "ring"}, `--redis-mode: unknown Redis mode "ring"`},
		{"sentinel mode without a master", nil, []string{"--redis-mode", "sentinel"}, "--redis-mode sentinel needs --redis-master-name"},
		{"standalone with two addresses", map[string]string{"AUTHSERVER_REDIS_ADDRS": "a:1,b:2"}, []string{"--redis-mode", "standalone"}, "--redis-mode standalone takes one --redis-addrs"},
		{"sentinel auth without sentinel", nil, []string{"--redis-sentinel-password-file", "/tmp/pw"}, "--redis-sentinel-username and --redis-sentinel-password-file need Sentinel"},
		{"replica acks on a one-address cluster", nil, []string{"--redis-mode", "cluster", "--redis-min-replicas-acked", "1"}, "--redis-min-replicas-acked needs a single Redis or Sentinel"},
		{"missing password file", nil, []string{"--redis-password-file", "/nonexistent/pw", "--keys-dir", t.TempDir()}, "reading Redis password file"},
		{"required audience without audiences", nil, []string{"--require-audience"}, "--require-audience needs --audiences"},
		{"certificate without key", nil, []string{"--tls-cert-file", "/tmp/tls.crt"}, "--tls-cert-file and --tls-key-file go together"},
		{"token service URL with a query", nil, []string{"--token-service-url", "https://issuer?x=1"}, "--token-service-url must be an http:// or https:// base URL"},
		{"introspection clients without an audience", nil, []string{"--introspection-clients", "edge/gateway"}, "--client-audience is required with --introspection-clients"},
		{"introspection clients on the issuer", nil, []string{"--role", "issuer", "--client-audience", "a", "--introspection-clients", "edge/gateway"}, "--introspection-clients is for --role verifier"},
		{"unloadable certificate", nil, []string{"--tls-cert-file", "/nonexistent/tls.crt", "--tls-key-file", "/nonexistent/tls.key", "--keys-dir", t.TempDir()}, "loading the TLS certificate"},
		{"refresh lifetime past the cap", nil, []string{"--refresh-lifetime", "2161h"}, "--refresh-lifetime at most 2160h0m0s"},
		{"access lifetime past the cap", nil, []string{"--access-lifetime", "25h"}, "--access-lifetime must be at most 24h0m0s"},
		{"grace period too long", nil, []string{"--refresh-grace-period", "6m"}, "--refresh-grace-period must be at most 5m0s"},
		{"negative refresh limit", nil, []string{"--refreshes-per-minute", "-1"}, "--refreshes-per-minute must not be negative"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			_, err := run(t, context.Background(), append([]string{"serve", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"}, tc.args...)...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestServe_FlagBeatsEnvironment(t *testing.T) {
	t.Setenv("AUTHSERVER_MAX_TOKEN_BYTES", "10")
	_, err := run(t, context.Background(), "serve", "--max-token-bytes", "12")
	if err == nil || !strings.Contains(err.Error(), "--max-token-bytes must be at least 64") {
		t.Fatalf("err = %v", err)
	}
}

// TestServeHelp_MatchesTheFlagsContract checks that every flag of
// docs/authserver-flags.md exists with its env var and default, and no other.
func TestServeHelp_MatchesTheFlagsContract(t *testing.T) {
	doc, err := os.ReadFile("../../docs/authserver-flags.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `--([a-z-]+)` \\| `(AUTHSERVER_[A-Z_]+)` \\| ([^|]+) \\|")
	rows := row.FindAllStringSubmatch(string(doc), -1)
	if len(rows) < 15 {
		t.Fatalf("found %d flag rows in the doc", len(rows))
	}
	serve := newServeCommand()
	documented := map[string]bool{}
	for _, r := range rows {
		name, env, def := r[1], r[2], strings.Trim(strings.TrimSpace(r[3]), "`")
		documented[name] = true
		f := serve.Flags().Lookup(name)
		if f == nil {
			t.Errorf("documented flag --%s does not exist", name)
			continue
		}
		if serverenv.Var(name) != env || !slices.Contains(serverenv.Serve, env) || !strings.Contains(f.Usage, env) {
			t.Errorf("--%s: env %s, usage %q", name, env, f.Usage)
		}
		if !sameDefault(f.DefValue, def) {
			t.Errorf("--%s: default %q, documented %q", name, f.DefValue, def)
		}
	}
	serve.Flags().VisitAll(func(f *pflag.Flag) {
		if f.Name != "help" && !documented[f.Name] {
			t.Errorf("flag --%s is not in docs/authserver-flags.md", f.Name)
		}
	})
	if len(serverenv.Serve) != len(documented) {
		t.Errorf("serverenv.Serve declares %d variables, the doc %d flags", len(serverenv.Serve), len(documented))
	}
}

// TestServe_RefusesAnUnknownAuthserverVariable: a misspelt or retired AUTHSERVER_*
// setting stops the server, named, instead of being ignored.
func TestServe_RefusesAnUnknownAuthserverVariable(t *testing.T) {
	t.Setenv("AUTHSERVER_REDIS_ADRESSES", "redis:6379")
	t.Setenv("AUTHSERVER_LEEWAY", "1s")
	_, err := run(t, context.Background(), "serve")
	if err == nil || !strings.Contains(err.Error(), "unknown environment variable AUTHSERVER_REDIS_ADRESSES:") {
		t.Fatalf("err = %v, want the unknown variable named", err)
	}
}

// sameDefault compares a flag's default with the documented one, allowing "" for an
// empty value, durations in any spelling and a list in brackets.
func sameDefault(got, documented string) bool {
	if documented == `""` {
		return got == "" || got == "[]"
	}
	if strings.Trim(got, "[]") == documented {
		return true
	}
	g, err1 := time.ParseDuration(got)
	d, err2 := time.ParseDuration(documented)
	return err1 == nil && err2 == nil && g == d
}
