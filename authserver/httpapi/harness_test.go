package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"

	"github.com/hiringo/auth-operator/authserver/blacklist"
	"github.com/hiringo/auth-operator/authserver/httpapi"
	"github.com/hiringo/auth-operator/authserver/keydomain"
	"github.com/hiringo/auth-operator/authserver/keyfiles"
	"github.com/hiringo/auth-operator/authserver/keyset"
	"github.com/hiringo/auth-operator/authserver/sessions"
	"github.com/hiringo/auth-operator/authserver/verifycache"
	"github.com/hiringo/auth-operator/internal/devkeys"
	"github.com/hiringo/auth-operator/internal/roles"
	"github.com/hiringo/auth-operator/internal/testutil/memstore"
	"github.com/hiringo/auth-operator/internal/testutil/redistest"
)

// The redis-server shared by the tests of this package that do not stop it, started by
// the first that needs it; each harness uses its own key prefix.
var (
	redisOnce    sync.Once
	packageRedis *redistest.Server
	redisDir     string
	redisErr     error
)

// sharedRedis returns the package's redis-server, starting it on first use. Under
// -short the test is skipped: the unit tier starts no process.
func sharedRedis(t testing.TB) *redistest.Server {
	t.Helper()
	skipProcesses(t, "redis-server")
	redisOnce.Do(func() {
		if redisDir, redisErr = os.MkdirTemp("", "httpapi-redis-"); redisErr == nil {
			packageRedis, redisErr = redistest.New(redisDir, redistest.Options{})
		}
	})
	if redisErr != nil {
		t.Fatal(redisErr)
	}
	return packageRedis
}

// skipProcesses skips t under -short, the tier of tests that start no process.
func skipProcesses(t testing.TB, what string) {
	t.Helper()
	if testing.Short() {
		t.Skipf("starts %s: not in -short", what)
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	stopKube()
	if packageRedis != nil {
		packageRedis.Stop()
	}
	if redisDir != "" {
		os.RemoveAll(redisDir)
	}
	os.Exit(code)
}

const testLeeway = 30 * time.Second

// testIssuer is the iss of the tokens the test issuers sign.
const testIssuer = "http://auth-authserver.test.svc"

// harness is one server of either role on loopback, built by roles.NewVerifier or
// roles.NewIssuer as authserver serve builds it, with a real key directory and a store:
// the in-memory one (memstore) unless a test needs Redis' behaviour (onRedis, or a
// server of its own), then a real redis-server.
type harness struct {
	t     testing.TB
	redis *redistest.Server
	// mem is the in-memory store, when the harness runs on one (bl and rdb are nil).
	mem    *memstore.Store
	dir    string
	prefix string
	set    keydomain.Set
	keys   *keyset.Store
	bl     *blacklist.Store
	// rdb is a client of the harness's Redis, for tests that read it.
	rdb   goredis.UniversalClient
	cache *verifycache.Cache
	// sessions is the server's revocation service.
	sessions *sessions.Service
	api      *httpapi.Server
	srv      endpoint
	// adminSrv is the admin port: /healthz, /readyz, /metrics.
	adminSrv endpoint
	reg      *prometheus.Registry
	client   *http.Client
}

// endpoint is where a server listens.
type endpoint struct{ URL string }

// harnessConfig is what options change: the server's configuration and role.
type harnessConfig struct {
	cfg    roles.Config
	issuer bool
	// redis runs the harness on the package's redis-server rather than in memory.
	redis bool
}

// onRedis runs the harness on a real redis-server (the package's), for a test of what
// only Redis does: its keys and expiries, pub/sub between replicas, its outages.
func onRedis(c *harnessConfig) { c.redis = true }

// withAudiences makes the verifier enforce audiences, refusing tokens without aud too
// when require is set.
func withAudiences(require bool, audiences ...string) harnessOption {
	return func(c *harnessConfig) { c.cfg.Audiences, c.cfg.RequireAudience = audiences, require }
}

// withConfig changes the server's configuration (lifetimes, clock, refresh policy).
func withConfig(f func(*roles.Config)) harnessOption {
	return func(c *harnessConfig) { f(&c.cfg) }
}

// withRedis makes the harness reach Redis as cfg says, its writes acknowledged by
// acks replicas.
func withRedis(cfg blacklist.ClientConfig, acks blacklist.ReplicaAcks) harnessOption {
	return func(c *harnessConfig) { c.cfg.Redis, c.cfg.ReplicaAcks = cfg, acks }
}

// asIssuer makes the harness's server an issuer whose callers clients authorizes.
func asIssuer(clients httpapi.Authorizer, singleSession bool) harnessOption {
	return func(c *harnessConfig) { c.issuer, c.cfg.Clients, c.cfg.SingleSession = true, clients, singleSession }
}

type harnessOption func(*harnessConfig)

func compat(c *harnessConfig) { c.cfg.CompatStatusCodes = true }

// withIntrospection lets the callers clients authorizes introspect tokens.
func withIntrospection(clients httpapi.Authorizer) harnessOption {
	return func(c *harnessConfig) { c.cfg.Introspection = clients }
}

func corsOrigins(o ...string) harnessOption {
	return func(c *harnessConfig) { c.cfg.CORSOrigins = o }
}

// withCache turns on the verified-token cache with the given size and its
// revocation subscription.
func withCache(size int) harnessOption {
	return func(c *harnessConfig) { c.cfg.VerifyCacheSize = size }
}

// newHarness serves the API with a fresh key set: against redis when it is not nil,
// the package's redis-server with onRedis, else an in-memory store.
func newHarness(t testing.TB, redis *redistest.Server, opts ...harnessOption) *harness {
	t.Helper()
	var probe harnessConfig
	for _, o := range opts {
		o(&probe)
	}
	var mem *memstore.Store
	switch {
	case redis == nil && probe.redis:
		redis = sharedRedis(t)
	case redis == nil:
		mem = memstore.New(nil)
	default:
		skipProcesses(t, "redis-server")
	}
	dir := t.TempDir()
	set := mustSet(t)
	if err := devkeys.WriteMounted(dir, set); err != nil {
		t.Fatal(err)
	}
	prefix := strings.NewReplacer("/", ":", " ", "_").Replace(t.Name()) + fmt.Sprintf(":%d:", time.Now().UnixNano())
	return startHarness(t, backend{redis, mem}, dir, set, prefix, opts...)
}

// newReplica serves a second API process of the same deployment as h: the same keys
// directory, store and key prefix, its own key watcher, Redis client and cache. Replicas
// on an in-memory store share it, but no revocation channel.
func newReplica(h *harness, opts ...harnessOption) *harness {
	h.t.Helper()
	return startHarness(h.t, backend{h.redis, h.mem}, h.dir, h.set, h.prefix, opts...)
}

// backend is the store a harness runs on: a redis-server, or else an in-memory store.
type backend struct {
	redis *redistest.Server
	mem   *memstore.Store
}

// onPackageRedis is the package's redis-server as a harness's backend.
func onPackageRedis(t testing.TB) backend { return backend{redis: sharedRedis(t)} }

// startHarness builds the server with roles' constructors and runs it until the test
// ends, once it follows the revocation channel.
func startHarness(t testing.TB, b backend, dir string, set keydomain.Set, prefix string, opts ...harnessOption) *harness {
	t.Helper()
	h := &harness{t: t, redis: b.redis, mem: b.mem, dir: dir, prefix: prefix, set: set, reg: prometheus.NewRegistry()}
	hc := harnessConfig{cfg: roles.Config{
		Listen: "127.0.0.1:0", AdminListen: "127.0.0.1:0", KeysDir: dir, RedisKeyPrefix: prefix,
		Leeway: testLeeway, Issuer: testIssuer, JWKSMaxAge: 5 * time.Minute, ShutdownTimeout: 2 * time.Second,
		Registry:  h.reg,
		KeyReload: keyset.Options{Debounce: 10 * time.Millisecond, Resync: time.Hour},
		Follow:    blacklist.FollowOptions{HealthInterval: 200 * time.Millisecond, RetryInterval: 50 * time.Millisecond},
	}}
	if b.mem != nil {
		hc.cfg.Store = b.mem
	} else {
		hc.cfg.Redis = blacklist.ClientConfig{Addrs: []string{b.redis.Addr}, Timeout: 500 * time.Millisecond}
	}
	for _, o := range opts {
		o(&hc)
	}
	if b.redis != nil {
		rdb, err := blacklist.NewClient(hc.cfg.Redis)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { rdb.Close() })
		h.rdb = rdb
		markUsed(t, rdb, prefix)
	}
	newServer := roles.NewVerifier
	if hc.issuer {
		newServer = roles.NewIssuer
	} else if hc.cfg.Lifetimes.Access == 0 {
		// A verifier of any token lifetime the tests sign (issuers sign 15 minutes).
		hc.cfg.Lifetimes.Access = sessions.MaxAccessLifetime
	}
	s, err := newServer(context.Background(), hc.cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
	})
	select {
	case <-s.Following():
	case <-time.After(5 * time.Second):
		t.Fatal("the revocation subscription was not confirmed within 5s")
	}
	h.keys, h.bl, h.cache, h.sessions, h.api = s.Keys, s.Store, s.Cache, s.Sessions, s.API
	h.srv, h.adminSrv = endpoint{"http://" + s.Addr().String()}, endpoint{"http://" + s.AdminAddr().String()}
	h.client = &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 64},
	}
	t.Cleanup(h.client.CloseIdleConnections)
	return h
}

// generationMarker is the key of the store's generation marker under prefix.
func generationMarker(prefix string) string { return prefix + "store-generation" }

// markUsed marks the store under prefix, unless it is marked, as one that servers of this
// release have used for longer than the upgrade's window: no server then reads the first
// release's layout, whose extra reads would stand between a test and what it measures.
func markUsed(t testing.TB, rdb goredis.UniversalClient, prefix string) {
	t.Helper()
	g, err := json.Marshal(blacklist.Generation{ID: fmt.Sprintf("%d-harness", time.Now().Add(-48*time.Hour).UnixMilli()), KeyLayout: blacklist.KeyLayout})
	if err != nil {
		t.Fatal(err)
	}
	if err := rdb.SetNX(context.Background(), generationMarker(prefix), g, 0).Err(); err != nil {
		t.Fatal(err)
	}
}

func mustSet(t testing.TB) keydomain.Set {
	t.Helper()
	s, err := keyfiles.NewSet(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// response is a finished response with its body read.
type response struct {
	*http.Response
	body string
}

// do sends one request to the API; bearer, when not empty, becomes the Authorization header.
func (h *harness) do(method, path, bearer string, headers ...string) response {
	h.t.Helper()
	return h.doAt(h.srv.URL, method, path, bearer, headers...)
}

// admin sends one GET to the admin port.
func (h *harness) admin(path string) response {
	h.t.Helper()
	return h.doAt(h.adminSrv.URL, http.MethodGet, path, "")
}

func (h *harness) doAt(base, method, path, bearer string, headers ...string) response {
	h.t.Helper()
	req, err := http.NewRequest(method, base+path, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	resp, err := h.client.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return response{Response: resp, body: string(body)}
}

// expect checks status and exact body.
func (r response) expect(t testing.TB, status int, body string) {
	t.Helper()
	if r.StatusCode != status || r.body != body {
		t.Errorf("%s %s: got %d %s\nwant %d %s", r.Request.Method, r.Request.URL.Path, r.StatusCode, r.body, status, body)
	}
}

// readyBody is the body of a ready /readyz with the blacklist store's state.
func readyBody(blacklist string) string {
	return `{"success":true,"message":"ok","payload":{"blacklist":"` + blacklist + `"}}`
}

func errorBody(msg string) string {
	return `{"success":false,"message":"` + msg + `","payload":null}`
}
