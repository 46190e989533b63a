package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	goredis "github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"
	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"

	"github.com/hiringo/auth-operator/authserver/blacklist"
	"github.com/hiringo/auth-operator/authserver/clientauth"
	"github.com/hiringo/auth-operator/authserver/httpapi"
	"github.com/hiringo/auth-operator/authserver/issuance"
	"github.com/hiringo/auth-operator/authserver/keyset"
	"github.com/hiringo/auth-operator/authserver/keywatch"
	"github.com/hiringo/auth-operator/authserver/sessions"
	"github.com/hiringo/auth-operator/authserver/storestate"
	"github.com/hiringo/auth-operator/authserver/token"
	"github.com/hiringo/auth-operator/authserver/tracing"
	"github.com/hiringo/auth-operator/authserver/userlogouts"
	"github.com/hiringo/auth-operator/authserver/verifycache"
	"github.com/hiringo/auth-operator/internal/keylifecycle"
	"github.com/hiringo/auth-operator/internal/version"
)

// serveConfig holds the flags of `authserver serve`; docs/authserver-flags.md lists them.
type serveConfig struct {
	listen            string
	adminListen       string
	keysDir           string
	redis             blacklist.ClientConfig
	redisMode         string
	redisKeyPrefix    string
	redisMinReplicas  int
	leeway            time.Duration
	maxTokenBytes     int
	corsOrigins       []string
	compatStatusCodes bool
	jwksMaxAge        time.Duration
	verifyCacheSize   int
	logLevel          string
	shutdownDelay     time.Duration
	shutdownTimeout   time.Duration
	accessLifetime    time.Duration
	refreshLifetime   time.Duration
	sessionMaxLife    time.Duration
	refreshGrace      time.Duration
	refreshesPerMin   int
	issuer            string
	role              string
	audiences         []string
	requireAudience   bool
	issuanceClients   []string
	introspectClients []string
	tokenServiceURL   string
	tlsCertFile       string
	tlsKeyFile        string
	clientAudience    string
	singleSession     bool
	keysSecret        string
	userLogouts       string
	otlpEndpoint      string
	storeState        string
	namespace         string
	kubeconfig        string
}

// lifetimes are the longest token lifetimes, as the sessions service needs them.
func (c serveConfig) lifetimes() sessions.Lifetimes {
	return sessions.Lifetimes{Access: c.accessLifetime, Refresh: c.refreshLifetime}
}

func newServeCommand() *cobra.Command {
	var c serveConfig
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the HTTP API",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return serve(cmd.Context(), c)
		},
	}
	f := cmd.Flags()
	f.StringVar(&c.role, "role", string(httpapi.RoleVerifier), "verifier (logout, verify, JWKS, public key, OIDC discovery; public keys only) or issuer (POST /auth/token, /auth/refresh; the private key Secret)")
	f.StringVar(&c.listen, "listen", ":8080", "listen address of the API: HTTP, or HTTPS with --tls-cert-file")
	f.StringVar(&c.tlsCertFile, "tls-cert-file", "", "PEM certificate chain to serve the API over TLS with (tls.crt of a kubernetes.io/tls Secret); reloaded when it changes, the last good one kept while the files are bad; empty: plain HTTP")
	f.StringVar(&c.tlsKeyFile, "tls-key-file", "", "PEM private key of --tls-cert-file (tls.key)")
	f.StringVar(&c.adminListen, "admin-listen", ":8081", "HTTP listen address of /healthz, /readyz and /metrics (the probes and Prometheus; keep it off the API's Service)")
	f.StringVar(&c.keysDir, "keys-dir", "/etc/authserver/keys", "directory of the mounted signing-key Secret (docs/keys-layout.md)")
	f.StringSliceVar(&c.redis.Addrs, "redis-addrs", []string{"127.0.0.1:6379"}, "comma-separated Redis host:port list: one node, the seeds of a Cluster (one configuration endpoint is enough), or the Sentinels with --redis-master-name")
	f.StringVar(&c.redisMode, "redis-mode", string(blacklist.ModeAuto), "auto, standalone, sentinel or cluster; auto: Sentinel with --redis-master-name, Cluster with several --redis-addrs, and one address is asked (INFO cluster) whether it is a Cluster node")
	f.StringVar(&c.redis.MasterName, "redis-master-name", "", "Sentinel master name")
	f.StringVar(&c.redis.SentinelUsername, "redis-sentinel-username", "", "ACL user name of the Sentinels themselves (Sentinel only)")
	f.StringVar(&c.redis.SentinelPasswordFile, "redis-sentinel-password-file", "", "file holding the Sentinels' own password (Sentinel only)")
	f.StringVar(&c.redis.Username, "redis-username", "", "Redis ACL user name")
	f.StringVar(&c.redis.PasswordFile, "redis-password-file", "", "file holding the Redis password")
	f.IntVar(&c.redis.DB, "redis-db", 0, "Redis database number (single node and Sentinel only)")
	f.BoolVar(&c.redis.TLS, "redis-tls", false, "connect to Redis with TLS")
	f.StringVar(&c.redis.TLSCAFile, "redis-tls-ca-file", "", "CA bundle for the Redis server certificate (system roots when empty)")
	f.StringVar(&c.redis.TLSServer, "redis-tls-server-name", "", "server name to verify when it differs from the address")
	f.StringVar(&c.redisKeyPrefix, "redis-key-prefix", "authserver:", "prefix of every Redis key the server writes")
	f.IntVar(&c.redisMinReplicas, "redis-min-replicas-acked", 0, "replicas that must acknowledge a logout's write (Redis WAIT) before it is answered 200; fewer answer 503 (single node and Sentinel only)")
	f.DurationVar(&c.leeway, "leeway", 30*time.Second, "clock leeway for exp, nbf and iat")
	f.IntVar(&c.maxTokenBytes, "max-token-bytes", token.DefaultMaxBytes, "longest accepted token")
	f.StringSliceVar(&c.corsOrigins, "cors-origins", nil, "comma-separated origins allowed to call from a browser (* for any)")
	f.BoolVar(&c.compatStatusCodes, "compat-status-codes", false, "answer with the original's codes: 400 for a missing token, 500 for a blacklisted one")
	f.DurationVar(&c.jwksMaxAge, "jwks-max-age", keylifecycle.DefaultJWKSMaxAge, "Cache-Control max-age of the JWKS and public key; with the kubelet's Secret propagation it must stay below the operator's --min-key-publish-time")
	f.IntVar(&c.verifyCacheSize, "verify-cache-size", verifycache.DefaultSize, "entries of the verified-token cache; 0 turns it off")
	f.DurationVar(&c.accessLifetime, "access-lifetime", sessions.DefaultAccessLifetime, "lifetime of issued access tokens; a verifier refuses a token whose exp - iat exceeds it plus --leeway")
	f.DurationVar(&c.refreshLifetime, "refresh-lifetime", sessions.DefaultRefreshLifetime, "lifetime of issued refresh tokens (at most 2160h); a session's record in Redis lives this long after its latest refresh")
	f.DurationVar(&c.sessionMaxLife, "session-max-lifetime", issuance.DefaultSessionMaxLifetime, "absolute lifetime of a session from its login: refreshes stop then, and no token of it outlives it; 0 for none (issuer)")
	f.DurationVar(&c.refreshGrace, "refresh-grace-period", issuance.DefaultRefreshGrace, "how long after a refresh the refresh token it replaced still gets a pair of the same new stamp, while the new one is unused (a client retrying a refresh whose answer it lost); 0 makes every second use reuse, which revokes the session (issuer)")
	f.IntVar(&c.refreshesPerMin, "refreshes-per-minute", issuance.DefaultRefreshesPerMinute, "refreshes of one session allowed per minute, grace answers included; more answer 429; 0 for no limit (issuer)")
	f.StringVar(&c.issuer, "issuer", "", "iss of issued tokens and of the OIDC discovery document; a token with another iss is refused (one without iss still verifies)")
	f.StringSliceVar(&c.audiences, "audiences", nil, "comma-separated aud of issued tokens; an access token that names none of them is refused (one without aud still verifies unless --require-audience)")
	f.BoolVar(&c.requireAudience, "require-audience", false, "refuse access tokens without aud (seed-format tokens) too; needs --audiences")
	f.StringSliceVar(&c.issuanceClients, "issuance-clients", nil, "comma-separated namespace/serviceaccount allowed to call POST /auth/token and /auth/revoke; empty: every caller gets 403 (issuer)")
	f.StringSliceVar(&c.introspectClients, "introspection-clients", nil, "comma-separated namespace/serviceaccount allowed to call POST /auth/introspect; empty: every caller gets 403 (verifier)")
	f.StringVar(&c.clientAudience, "client-audience", "", "audience a caller's projected ServiceAccount token must carry (TokenReview spec.audiences) (issuer; verifier with --introspection-clients)")
	f.StringVar(&c.tokenServiceURL, "token-service-url", "", "base URL of the issuer, for the discovery document's token_endpoint and revocation_endpoint (verifier); empty: left out")
	f.BoolVar(&c.singleSession, "single-session", false, "a new issuance ends the user's earlier sessions (issuer)")
	f.StringVar(&c.keysSecret, "keys-secret", "", "name of the private key Secret to watch through the API: a kid that leaves it is revoked on every verifier at once (issuer)")
	f.StringVar(&c.userLogouts, "user-logouts-configmap", "", "name of the ConfigMap of administrative user logouts (kubectl authsvc logout-user) to watch and apply (issuer, with --namespace)")
	f.StringVar(&c.storeState, "store-state-configmap", "", "ConfigMap in which the issuer records the blacklist store's generation and any loss of its data (issuer; with --namespace)")
	f.StringVar(&c.namespace, "namespace", "", "namespace of --keys-secret, --user-logouts-configmap and --store-state-configmap (issuer)")
	f.StringVar(&c.kubeconfig, "kubeconfig", "", "kubeconfig file for the Kubernetes API; empty: in-cluster config (issuer; verifier with --introspection-clients)")
	f.StringVar(&c.otlpEndpoint, "otlp-endpoint", "", "OTLP/HTTP base URL to export traces to (http://collector:4318; /v1/traces is appended, as to OTEL_EXPORTER_OTLP_ENDPOINT); empty: tracing is off unless OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set")
	f.StringVar(&c.logLevel, "log-level", "info", "debug, info, warn or error")
	f.DurationVar(&c.shutdownDelay, "shutdown-delay", 5*time.Second, "on SIGTERM, keep serving this long with /readyz failing, so load balancers stop sending requests first")
	f.DurationVar(&c.shutdownTimeout, "shutdown-timeout", 20*time.Second, "then wait this long for in-flight requests to finish")
	return withEnv(cmd)
}

// validate rejects settings that cannot work, naming the flag to fix.
func (c serveConfig) validate() error {
	var errs []error
	if c.leeway < 0 {
		errs = append(errs, errors.New("--leeway must not be negative"))
	}
	if c.maxTokenBytes < 64 {
		errs = append(errs, errors.New("--max-token-bytes must be at least 64"))
	}
	if c.verifyCacheSize < 0 {
		errs = append(errs, errors.New("--verify-cache-size must not be negative"))
	}
	if c.shutdownDelay < 0 || c.shutdownTimeout < 0 {
		errs = append(errs, errors.New("--shutdown-delay and --shutdown-timeout must not be negative"))
	}
	if c.leeway > token.MaxLeeway {
		errs = append(errs, fmt.Errorf("--leeway must be at most %s: fix the clocks (NTP) rather than widen the leeway", token.MaxLeeway))
	}
	if c.accessLifetime <= 0 || c.refreshLifetime <= 0 {
		errs = append(errs, errors.New("--access-lifetime and --refresh-lifetime must be positive"))
	}
	if c.requireAudience && len(c.audiences) == 0 {
		errs = append(errs, errors.New("--require-audience needs --audiences: the audiences a token must name"))
	}
	if (c.tlsCertFile == "") != (c.tlsKeyFile == "") {
		errs = append(errs, errors.New("--tls-cert-file and --tls-key-file go together: give both or neither"))
	}
	if c.tokenServiceURL != "" {
		if u, err := url.Parse(c.tokenServiceURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			errs = append(errs, fmt.Errorf("--token-service-url must be an http:// or https:// base URL such as https://auth-issuer.auth.svc, not %q", c.tokenServiceURL))
		}
	}
	if c.accessLifetime > sessions.MaxAccessLifetime || c.refreshLifetime > sessions.MaxRefreshLifetime {
		errs = append(errs, fmt.Errorf("--access-lifetime must be at most %s and --refresh-lifetime at most %s: revocations are kept for those, whatever a server runs with", sessions.MaxAccessLifetime, sessions.MaxRefreshLifetime))
	}
	if c.sessionMaxLife < 0 || c.refreshGrace < 0 || c.refreshesPerMin < 0 {
		errs = append(errs, errors.New("--session-max-lifetime, --refresh-grace-period and --refreshes-per-minute must not be negative"))
	}
	if c.refreshGrace > issuance.MaxRefreshGrace {
		errs = append(errs, fmt.Errorf("--refresh-grace-period must be at most %s: a stolen refresh token may be used that long after its rotation", issuance.MaxRefreshGrace))
	}
	switch httpapi.Role(c.role) {
	case httpapi.RoleVerifier:
		if len(c.introspectClients) > 0 && c.clientAudience == "" {
			errs = append(errs, errors.New("--client-audience is required with --introspection-clients: the audience callers' ServiceAccount tokens are requested for"))
		}
		if _, err := clientauth.ParseClients(c.introspectClients); err != nil {
			errs = append(errs, fmt.Errorf("--introspection-clients: %w", err))
		}
	case httpapi.RoleIssuer:
		if len(c.introspectClients) > 0 {
			errs = append(errs, errors.New("--introspection-clients is for --role verifier, which serves /auth/introspect"))
		}
		if c.clientAudience == "" {
			errs = append(errs, errors.New("--client-audience is required with --role issuer: the audience callers' ServiceAccount tokens are requested for"))
		}
		if _, err := clientauth.ParseClients(c.issuanceClients); err != nil {
			errs = append(errs, fmt.Errorf("--issuance-clients: %w", err))
		}
		if (c.keysSecret == "" && c.storeState == "" && c.userLogouts == "") != (c.namespace == "") {
			errs = append(errs, errors.New("--namespace goes with --keys-secret, --store-state-configmap or --user-logouts-configmap: give both or neither"))
		}
	default:
		errs = append(errs, fmt.Errorf("--role must be verifier or issuer, not %q", c.role))
	}
	if c.storeState != "" && httpapi.Role(c.role) != httpapi.RoleIssuer {
		errs = append(errs, errors.New("--store-state-configmap is for --role issuer (verifiers have no Kubernetes client)"))
	}
	if c.jwksMaxAge < 0 {
		errs = append(errs, errors.New("--jwks-max-age must not be negative"))
	}
	if c.otlpEndpoint != "" {
		if u, err := url.Parse(c.otlpEndpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("--otlp-endpoint must be an http:// or https:// URL such as http://otel-collector.observability.svc:4318, not %q", c.otlpEndpoint))
		}
	}
	if c.adminListen == "" {
		errs = append(errs, errors.New("--admin-listen is required"))
	}
	if c.keysDir == "" {
		errs = append(errs, errors.New("--keys-dir is required"))
	}
	if len(c.redis.Addrs) == 0 {
		errs = append(errs, errors.New("--redis-addrs is required"))
	}
	if c.redisMinReplicas < 0 {
		errs = append(errs, errors.New("--redis-min-replicas-acked must not be negative"))
	}
	if mode, err := blacklist.ParseMode(c.redisMode); err != nil {
		errs = append(errs, fmt.Errorf("--redis-mode: %w", err))
	} else if len(c.redis.Addrs) > 0 {
		rc := c.redis
		rc.Mode = mode
		if err := rc.Check(); err != nil {
			errs = append(errs, err)
		}
		errs = append(errs, checkReplicaAcks(rc, c.redisMinReplicas))
	}
	if c.redis.DB < 0 {
		errs = append(errs, errors.New("--redis-db must not be negative"))
	}
	return errors.Join(errs...)
}

// checkReplicaAcks refuses replica acknowledgement on a Cluster, once the mode is
// known: a WAIT could reach another shard than the write.
func checkReplicaAcks(rc blacklist.ClientConfig, acks int) error {
	if mode, ok := rc.Inferred(); acks > 0 && ok && mode == blacklist.ModeCluster {
		return errors.New("--redis-min-replicas-acked needs a single Redis or Sentinel, not a Cluster: set min-replicas-to-write on the Cluster's primaries instead")
	}
	return nil
}

func newLogger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: l})), nil
}

// serve runs the API until ctx ends, then drains.
func serve(ctx context.Context, c serveConfig) error {
	if err := c.validate(); err != nil {
		return err
	}
	log, err := newLogger(c.logLevel)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), version.Collector("authserver"))

	// The serving certificate is loaded first: one that does not load is a
	// configuration error, reported before anything waits for Redis.
	var certs *certwatcher.CertWatcher
	if c.tlsCertFile != "" {
		if certs, err = newCertWatcher(c.tlsCertFile, c.tlsKeyFile, log, reg); err != nil {
			return err
		}
	}
	issuer := httpapi.Role(c.role) == httpapi.RoleIssuer
	keys := keyset.NewStore(c.keysDir, log, reg, keyset.Options{Private: issuer})
	if err := keys.Load(); err != nil {
		log.Error("no key set yet; not ready until one loads", "err", err)
	}
	blacklist.RouteClientLogs(log)
	c.redis.Mode, _ = blacklist.ParseMode(c.redisMode)
	if c.redis.Mode, err = resolveRedisMode(ctx, c.redis, log); err != nil {
		return err
	}
	if err := checkReplicaAcks(c.redis, c.redisMinReplicas); err != nil {
		return err
	}
	client, err := blacklist.NewClient(c.redis)
	if err != nil {
		return err
	}
	defer client.Close()
	tp, err := startTracing(ctx, c, client, log)
	if err != nil {
		return err
	}
	if tp != nil {
		defer func() {
			flushCtx, done := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer done()
			if err := tp.Shutdown(flushCtx); err != nil {
				log.Warn("flushing traces failed", "err", err)
			}
		}()
	}
	bl := blacklist.NewStore(client, blacklist.StoreOptions{
		Traced:      tp != nil,
		Prefix:      c.redisKeyPrefix,
		Registerer:  reg,
		ReplicaAcks: blacklist.ReplicaAcks{Min: c.redisMinReplicas},
		Logger:      log,
	})
	defer bl.Close()
	verifier := token.NewVerifier(keys, token.VerifierOptions{
		Leeway: c.leeway, MaxBytes: c.maxTokenBytes, Issuer: c.issuer,
		Audiences: c.audiences, RequireAudience: c.requireAudience,
		MaxAccessLifetime: c.accessLifetime, MaxRefreshLifetime: c.refreshLifetime,
	})
	var cache *verifycache.Cache
	if c.verifyCacheSize > 0 && !issuer {
		cache, err = verifycache.New(keys, verifycache.Options{Size: c.verifyCacheSize, Registerer: reg})
		if err != nil {
			return err
		}
	}
	apiCfg := httpapi.Config{
		Role: httpapi.Role(c.role), Issuer: c.issuer, TokenServiceURL: c.tokenServiceURL,
		Keys: keys, Store: bl,
		Sessions:          sessions.New(sessions.Config{Verifier: verifier, Store: bl, Cache: cache, Lifetimes: c.lifetimes()}),
		CompatStatusCodes: c.compatStatusCodes, CORSOrigins: c.corsOrigins,
		JWKSMaxAge: c.jwksMaxAge, Logger: log, Registry: reg,
	}
	if tp != nil {
		apiCfg.TracerProvider = tp
	}
	var kube kubernetes.Interface
	// The issuer reviews its callers' ServiceAccount tokens, and so does a verifier that
	// answers introspection: TokenReviews have a client, and so a rate limit, of their own, so
	// a burst of callers neither waits behind the watches nor holds them up.
	var reviews *reviewClients
	if issuer || len(c.introspectClients) > 0 {
		if reviews, err = newReviewClients(c.kubeconfig); err != nil {
			return err
		}
		kube = reviews.kube
	}
	if !issuer && len(c.introspectClients) > 0 {
		clients, _ := clientauth.ParseClients(c.introspectClients)
		apiCfg.Introspection = reviews.authenticator(c.clientAudience, clients)
	}
	if issuer {
		clients, _ := clientauth.ParseClients(c.issuanceClients)
		apiCfg.Clients = reviews.authenticator(c.clientAudience, clients)
		apiCfg.Issuance = issuance.New(issuance.Config{
			Keys: keys, Verifier: verifier, Store: bl, Lifetimes: c.lifetimes(),
			Issuer: c.issuer, Audiences: c.audiences, SingleSession: c.singleSession,
			RefreshGrace: c.refreshGrace, RefreshesPerMinute: c.refreshesPerMin, SessionMaxLifetime: c.sessionMaxLife,
		})
	}
	api, err := httpapi.New(apiCfg)
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", c.listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", c.listen, err)
	}

	adminLn, err := net.Listen("tcp", c.adminListen)
	if err != nil {
		ln.Close()
		return fmt.Errorf("listening on %s (--admin-listen): %w", c.adminListen, err)
	}
	srv := newHTTPServer(api, log)
	if certs != nil {
		srv.TLSConfig = serverTLSConfig(certs)
	}
	adminSrv := newHTTPServer(api.Admin(), log)
	runCtx, cancel := context.WithCancel(ctx)
	// Every goroutine serve starts has ended when it returns.
	var background sync.WaitGroup
	defer func() {
		cancel()
		background.Wait()
	}()
	watchErr := make(chan error, 2)
	if issuer && c.keysSecret != "" {
		// The Secret through the API is the issuer's key source: a rotation or a
		// revocation takes effect at once, not after the kubelet's volume sync (which
		// would also bring stale versions back).
		var known []string
		if set := keys.Current(); set != nil {
			for _, k := range set.Keys() {
				known = append(known, k.ID)
			}
		}
		lifetimes := c.lifetimes()
		background.Go(func() {
			watchErr <- keywatch.Run(runCtx, keywatch.Config{
				Client: kube, Namespace: c.namespace, Name: c.keysSecret, Keys: keys, Store: bl, Known: known, Logger: log,
				Until: func() time.Time { return lifetimes.UserEntryExpiry(time.Now()) },
			})
		})
	} else {
		background.Go(func() { watchErr <- keys.Run(runCtx) })
	}
	if issuer && c.userLogouts != "" {
		lifetimes := c.lifetimes()
		applier, _ := os.Hostname()
		background.Go(func() {
			watchErr <- userlogouts.Run(runCtx, userlogouts.Config{
				Client: kube, Namespace: c.namespace, Name: c.userLogouts, Store: bl, Applier: applier, Logger: log,
				Until: lifetimes.UserEntryExpiry,
			})
		})
	}
	generation := blacklist.GenerationOptions{Logger: log}
	switch {
	case issuer && c.storeState != "":
		rec := storestate.Recorder{Client: kube, Namespace: c.namespace, Name: c.storeState, Logger: log}
		held, err := rec.Load(ctx)
		if err != nil {
			return err
		}
		bl.Hold(held)
		record, recorded := rec.Start(runCtx)
		defer func() {
			cancel()
			<-recorded
		}()
		generation.OnChange = record
	case cache != nil:
		// Tokens held may be issued before a loss's cutoff: each is checked again.
		generation.OnChange = func(ev blacklist.GenerationEvent) {
			if ev.Lost {
				cache.Purge()
			}
		}
	}
	// The first check is made before serving, so that a server started after a loss
	// was detected applies its cutoff from its first request (when Redis answers).
	firstCtx, firstDone := context.WithTimeout(ctx, 2*time.Second)
	if _, err := bl.CheckGeneration(firstCtx); err != nil {
		log.Warn("store generation not checked yet", "err", err)
	}
	firstDone()
	background.Go(func() { bl.WatchGeneration(runCtx, generation) })
	background.Go(func() { warnOnEviction(runCtx, bl, log) })
	if certs != nil {
		background.Go(func() {
			if err := certs.Start(runCtx); err != nil {
				log.Error("watching the TLS certificate failed: a renewed certificate is not picked up until a restart", "err", err)
			}
		})
	}
	background.Go(func() { checkVersion(runCtx, bl, log) })
	background.Go(func() { bl.WatchMemory(runCtx, blacklist.MemoryOptions{Logger: log}) })
	background.Go(func() { checkPublish(runCtx, bl, log) })
	if !issuer {
		background.Go(func() {
			bl.Follow(runCtx, sessions.Revocations{Cache: cache, Keys: keys}, blacklist.FollowOptions{Logger: log})
		})
	}
	serveErr := make(chan error, 2)
	background.Go(func() {
		if certs != nil {
			serveErr <- srv.ServeTLS(ln, "", "")
			return
		}
		serveErr <- srv.Serve(ln)
	})
	background.Go(func() { serveErr <- adminSrv.Serve(adminLn) })
	// Both servers are closed before the goroutines are waited for, so that one failing
	// does not leave the other serving; the admin port stays up through the drain, as the
	// kubelet reads the failing /readyz from it.
	defer srv.Close()
	defer adminSrv.Close()
	log.Info("serving", "role", c.role, "addr", ln.Addr().String(), "tls", certs != nil, "admin_addr", adminLn.Addr().String(), "keys_dir", c.keysDir, "compat_status_codes", c.compatStatusCodes)

	select {
	case err := <-serveErr:
		return fmt.Errorf("serving HTTP: %w", err)
	case err := <-watchErr:
		if err != nil {
			return err
		}
	case <-ctx.Done():
	}
	log.Info("draining", "delay", c.shutdownDelay.String(), "timeout", c.shutdownTimeout.String())
	api.Drain()
	select {
	case <-time.After(c.shutdownDelay):
	case err := <-serveErr:
		return fmt.Errorf("serving HTTP: %w", err)
	}
	shutdownCtx, done := context.WithTimeout(context.WithoutCancel(ctx), c.shutdownTimeout)
	defer done()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		_ = srv.Close()
		return fmt.Errorf("draining HTTP connections: %w", err)
	}
	log.Info("stopped")
	return nil
}

// startTracing sets up the trace exporter and the Redis client's spans when an OTLP
// endpoint is configured; otherwise it returns nil and nothing is wrapped.
func startTracing(ctx context.Context, c serveConfig, client goredis.UniversalClient, log *slog.Logger) (*sdktrace.TracerProvider, error) {
	if !tracing.Enabled(c.otlpEndpoint, os.Getenv) {
		return nil, nil
	}
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { log.Warn("exporting traces failed", "err", err) }))
	tp, err := tracing.NewProvider(ctx, c.otlpEndpoint, c.role)
	if err != nil {
		return nil, err
	}
	if err := tracing.InstrumentRedis(client, tp); err != nil {
		_ = tp.Shutdown(ctx)
		return nil, err
	}
	log.Info("tracing on: exporting spans over OTLP/HTTP")
	return tp, nil
}

// redisModeWait bounds how long the server waits at start for one Redis address to
// say whether it is a Cluster node; then it exits, and Kubernetes restarts it.
const redisModeWait = 30 * time.Second

// resolveRedisMode asks one Redis address in auto mode whether it is a Cluster node,
// retrying while it does not answer.
func resolveRedisMode(ctx context.Context, rc blacklist.ClientConfig, log *slog.Logger) (blacklist.Mode, error) {
	ctx, cancel := context.WithTimeout(ctx, redisModeWait)
	defer cancel()
	for {
		attempt, done := context.WithTimeout(ctx, 2*time.Second)
		mode, err := blacklist.ResolveMode(attempt, rc)
		done()
		if err == nil {
			if rc.Mode == blacklist.ModeAuto && len(rc.Addrs) == 1 && rc.MasterName == "" {
				log.Info("Redis mode inferred from the node", "mode", string(mode))
			}
			return mode, nil
		}
		if !errors.Is(err, blacklist.ErrUnavailable) {
			return "", err
		}
		log.Warn("Redis does not answer; retrying to learn its mode", "err", err)
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("--redis-mode auto: %w", err)
		case <-time.After(time.Second):
		}
	}
}

// kubeConfig is the configuration of the Kubernetes API client: from kubeconfig when
// set, else the pod's in-cluster configuration.
func kubeConfig(kubeconfig string) (*rest.Config, error) {
	var cfg *rest.Config
	var err error
	if kubeconfig == "" {
		cfg, err = rest.InClusterConfig()
	} else {
		cfg, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
	}
	if err != nil {
		return nil, fmt.Errorf("configuring the Kubernetes client (--kubeconfig): %w", err)
	}
	return cfg, nil
}

// newHTTPServer sets the timeouts and header limit that keep slow or huge requests
// from holding the server.
func newHTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// checkPublish reports, once Redis answers, a Redis user that may not publish on the
// revocation channel: logouts are still stored, but other replicas' caches and key
// sets would not hear of revocations.
func checkPublish(ctx context.Context, bl *blacklist.Store, log *slog.Logger) {
	for {
		checkCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := bl.CheckPublish(checkCtx)
		cancel()
		switch {
		case err == nil:
			return
		case errors.Is(err, blacklist.ErrCannotPublish):
			log.Error("unsafe Redis configuration: revocations cannot be announced to other replicas", "err", err)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(5 * time.Second):
		}
	}
}

// checkVersion logs, once Redis answers, a Redis too old for the store's scripts.
func checkVersion(ctx context.Context, bl *blacklist.Store, log *slog.Logger) {
	for {
		checkCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := bl.CheckVersion(checkCtx)
		cancel()
		switch {
		case err == nil:
			return
		case errors.Is(err, blacklist.ErrRedisTooOld):
			log.Error("unsupported Redis: logouts, refreshes and logins fail until it is upgraded", "err", err)
			return
		case !errors.Is(err, blacklist.ErrUnavailable):
			log.Info("cannot read the Redis version; make sure it is 7.0 or later", "err", err)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(5 * time.Second):
		}
	}
}

// warnOnEviction logs, once Redis answers, whether it may evict blacklist entries.
func warnOnEviction(ctx context.Context, bl *blacklist.Store, log *slog.Logger) {
	for {
		checkCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := bl.CheckEvictionPolicy(checkCtx)
		cancel()
		switch {
		case err == nil:
			return
		case errors.Is(err, blacklist.ErrEvictingPolicy):
			log.Warn("unsafe Redis configuration: set maxmemory-policy noeviction", "err", err)
			return
		case errors.Is(err, blacklist.ErrUnavailable) || ctx.Err() != nil:
		default:
			log.Info("cannot read Redis maxmemory-policy; make sure it is noeviction", "err", err)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(5 * time.Second):
		}
	}
}

// reviewClients are the Kubernetes clients of a server that authenticates callers: one for
// the watches, and one of its own for TokenReviews and the cluster's issuer discovery.
type reviewClients struct {
	kube, reviews kubernetes.Interface
}

func newReviewClients(kubeconfig string) (*reviewClients, error) {
	restCfg, err := kubeConfig(kubeconfig)
	if err != nil {
		return nil, err
	}
	kube, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return nil, err
	}
	reviewCfg := rest.CopyConfig(restCfg)
	reviewCfg.QPS, reviewCfg.Burst = clientauth.DefaultReviewQPS, clientauth.DefaultReviewBurst
	reviews, err := kubernetes.NewForConfig(reviewCfg)
	if err != nil {
		return nil, err
	}
	return &reviewClients{kube: kube, reviews: reviews}, nil
}

// authenticator authenticates the listed clients by their ServiceAccount tokens for audience.
func (r *reviewClients) authenticator(audience string, clients []clientauth.ServiceAccount) *clientauth.Authenticator {
	return clientauth.New(clientauth.Config{
		Reviews: r.reviews.AuthenticationV1().TokenReviews(), Audience: audience, Clients: clients,
		Keys: &clientauth.ClusterKeys{Client: r.reviews.Discovery().RESTClient()},
	})
}
