package httpapi_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"

	"github.com/hiringo/auth-operator/authserver/blacklist"
	"github.com/hiringo/auth-operator/authserver/httpapi"
	"github.com/hiringo/auth-operator/authserver/issuance"
	"github.com/hiringo/auth-operator/authserver/keydomain"
	"github.com/hiringo/auth-operator/authserver/keyfiles"
	"github.com/hiringo/auth-operator/authserver/keyset"
	"github.com/hiringo/auth-operator/authserver/sessions"
	"github.com/hiringo/auth-operator/authserver/token"
	"github.com/hiringo/auth-operator/authserver/tracing"
	"github.com/hiringo/auth-operator/authserver/verifycache"
	"github.com/hiringo/auth-operator/internal/devkeys"
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

// harness is one API server on loopback with a real key directory and a store: the
// in-memory one (memstore) unless a test needs Redis' behaviour (onRedis, or a server of
// its own), then a real redis-server.
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
	rdb    goredis.UniversalClient
	cache  *verifycache.Cache
	// sessions is the server's revocation service.
	sessions *sessions.Service
	api      *httpapi.Server
	srv      *httptest.Server
	// adminSrv serves the admin port: /healthz, /readyz, /metrics.
	adminSrv *httptest.Server
	reg      *prometheus.Registry
	client   *http.Client
}

// harnessConfig is what options change.
type harnessConfig struct {
	api       httpapi.Config
	cacheSize int
	// store replaces the harness's blacklist store as the sessions' store.
	store sessions.Store
	// issuer, when set, makes the server an issuer.
	issuer *issuerSetup
	// tracer, when set, traces the routes and the Redis client.
	tracer trace.TracerProvider
	// redisClient, when set, replaces the single-node client of the harness's Redis:
	// Sentinel or Cluster tests reach it through their own addresses.
	redisClient *blacklist.ClientConfig
	// replicaAcks is the store's replica acknowledgement (none by default).
	replicaAcks blacklist.ReplicaAcks
	// audiences and requireAudience are the verifier's --audiences and --require-audience.
	audiences       []string
	requireAudience bool
	// tuneSessions and tuneIssuance, when set, change the services' configuration
	// before they are made (lifetimes, clocks, refresh policy).
	tuneSessions func(*sessions.Config)
	tuneIssuance func(*issuance.Config)
	// redis runs the harness on the package's redis-server rather than in memory.
	redis bool
}

// onRedis runs the harness on a real redis-server (the package's), for a test of what
// only Redis does: its keys and expiries, pub/sub between replicas, its outages.
func onRedis(c *harnessConfig) { c.redis = true }

// withAudiences makes the verifier enforce audiences, refusing tokens without aud too
// when require is set.
func withAudiences(require bool, audiences ...string) harnessOption {
	return func(c *harnessConfig) { c.audiences, c.requireAudience = audiences, require }
}

// withSessions changes the sessions service's configuration.
func withSessions(f func(*sessions.Config)) harnessOption {
	return func(c *harnessConfig) { c.tuneSessions = f }
}

// withIssuance changes the issuance service's configuration (issuers only).
func withIssuance(f func(*issuance.Config)) harnessOption {
	return func(c *harnessConfig) { c.tuneIssuance = f }
}

// withRedis makes the harness reach Redis as cfg says, its writes acknowledged by
// acks replicas.
func withRedis(cfg blacklist.ClientConfig, acks blacklist.ReplicaAcks) harnessOption {
	return func(c *harnessConfig) { c.redisClient, c.replicaAcks = &cfg, acks }
}

// issuerSetup is what an issuer harness needs beyond a verifier's.
type issuerSetup struct {
	clients       httpapi.Authorizer
	singleSession bool
}

// asIssuer makes the harness's server an issuer whose callers clients authorizes.
func asIssuer(clients httpapi.Authorizer, singleSession bool) harnessOption {
	return func(c *harnessConfig) { c.issuer = &issuerSetup{clients: clients, singleSession: singleSession} }
}

type harnessOption func(*harnessConfig)

func compat(c *harnessConfig) { c.api.CompatStatusCodes = true }

// withIntrospection lets the callers clients authorizes introspect tokens.
func withIntrospection(clients httpapi.Authorizer) harnessOption {
	return func(c *harnessConfig) { c.api.Introspection = clients }
}

func corsOrigins(o ...string) harnessOption {
	return func(c *harnessConfig) { c.api.CORSOrigins = o }
}

// withCache turns on the verified-token cache with the given size and its
// revocation subscription.
func withCache(size int) harnessOption {
	return func(c *harnessConfig) { c.cacheSize = size }
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

func startHarness(t testing.TB, b backend, dir string, set keydomain.Set, prefix string, opts ...harnessOption) *harness {
	t.Helper()
	h := &harness{t: t, redis: b.redis, mem: b.mem, dir: dir, prefix: prefix, set: set, reg: prometheus.NewRegistry()}
	log := slog.New(slog.DiscardHandler)
	var probe harnessConfig
	for _, o := range opts {
		o(&probe)
	}
	h.keys = keyset.NewStore(h.dir, log, h.reg, keyset.Options{Debounce: 10 * time.Millisecond, Resync: time.Hour, Private: probe.issuer != nil})
	if err := h.keys.Load(); err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	var background sync.WaitGroup
	t.Cleanup(func() {
		stop()
		background.Wait()
	})
	background.Add(1)
	go func() {
		defer background.Done()
		if err := h.keys.Run(ctx); err != nil {
			t.Errorf("key watcher: %v", err)
		}
	}()
	var err error
	var pinger httpapi.Pinger = h.mem
	if h.mem == nil {
		h.startRedis(probe)
		pinger = h.bl
	}
	hc := harnessConfig{api: httpapi.Config{
		Keys:       h.keys,
		Store:      pinger,
		Issuer:     testIssuer,
		JWKSMaxAge: 5 * time.Minute,
		Logger:     log,
		Registry:   h.reg,
	}}
	for _, o := range opts {
		o(&hc)
	}
	switch {
	case hc.store != nil:
	case h.mem != nil:
		hc.store = h.mem
	default:
		hc.store = h.bl
	}
	hc.api.TracerProvider = hc.tracer
	sc := sessions.Config{
		Verifier: token.NewVerifier(h.keys, token.VerifierOptions{
			Leeway: testLeeway, Issuer: testIssuer, Audiences: hc.audiences, RequireAudience: hc.requireAudience,
			MaxAccessLifetime: 24 * time.Hour, MaxRefreshLifetime: sessions.DefaultRefreshLifetime,
		}),
		Store: hc.store,
	}
	if hc.cacheSize > 0 {
		h.cache, err = verifycache.New(h.keys, verifycache.Options{Size: hc.cacheSize, Registerer: h.reg})
		if err != nil {
			t.Fatal(err)
		}
		sc.Cache = h.cache
	}
	if h.mem == nil {
		h.follow(ctx, &background)
	} else if h.cache != nil {
		// One process on an in-memory store hears of no revocation but its own, which
		// the sessions service applies to its cache itself.
		h.cache.Resync()
	}
	if hc.tuneSessions != nil {
		hc.tuneSessions(&sc)
	}
	h.sessions = sessions.New(sc)
	hc.api.Sessions = h.sessions
	if is := hc.issuer; is != nil {
		hc.api.Role = httpapi.RoleIssuer
		hc.api.Clients = is.clients
		ic := issuance.Config{
			Keys: h.keys, Verifier: sc.Verifier, Sessions: h.sessions, Issuer: testIssuer, SingleSession: is.singleSession,
		}
		if hc.tuneIssuance != nil {
			hc.tuneIssuance(&ic)
		}
		hc.api.Issuance = issuance.New(ic)
	}
	h.api, err = httpapi.New(hc.api)
	if err != nil {
		t.Fatal(err)
	}
	h.srv = httptest.NewServer(h.api)
	t.Cleanup(h.srv.Close)
	h.adminSrv = httptest.NewServer(h.api.Admin())
	t.Cleanup(h.adminSrv.Close)
	h.client = &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 64},
	}
	t.Cleanup(h.client.CloseIdleConnections)
	return h
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

// confirmed is a revocation sink that reports each confirmed subscription.
type confirmed struct {
	sessions.Revocations
	onResync func()
}

func (c confirmed) Resync() {
	c.Revocations.Resync()
	c.onResync()
}

// startRedis connects h to its redis-server, as probe says.
func (h *harness) startRedis(probe harnessConfig) {
	clientCfg := blacklist.ClientConfig{Addrs: []string{h.redis.Addr}, Timeout: 500 * time.Millisecond}
	if probe.redisClient != nil {
		clientCfg = *probe.redisClient
	}
	client, err := blacklist.NewClient(clientCfg)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { client.Close() })
	h.rdb = client
	if probe.tracer != nil {
		if err := tracing.InstrumentRedis(client, probe.tracer); err != nil {
			h.t.Fatal(err)
		}
	}
	h.bl = blacklist.NewStore(client, blacklist.StoreOptions{Prefix: h.prefix, Registerer: h.reg, Traced: probe.tracer != nil, ReplicaAcks: probe.replicaAcks})
	h.t.Cleanup(h.bl.Close)
}

// follow follows h's revocation channel in background until ctx ends, once its first
// subscription is confirmed.
func (h *harness) follow(ctx context.Context, background *sync.WaitGroup) {
	followed := make(chan struct{})
	var once sync.Once
	background.Add(1)
	go func() {
		defer background.Done()
		h.bl.Follow(ctx, confirmed{sessions.Revocations{Cache: h.cache, Keys: h.keys}, func() { once.Do(func() { close(followed) }) }}, blacklist.FollowOptions{
			HealthInterval: 200 * time.Millisecond, RetryInterval: 50 * time.Millisecond,
		})
	}()
	select {
	case <-followed:
	case <-time.After(5 * time.Second):
		h.t.Fatal("the revocation subscription was not confirmed within 5s")
	}
}
