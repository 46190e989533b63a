package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/hiringo/auth-operator/authserver/blacklist"
	"github.com/hiringo/auth-operator/authserver/clientauth"
	"github.com/hiringo/auth-operator/authserver/httpapi"
	"github.com/hiringo/auth-operator/authserver/issuance"
	"github.com/hiringo/auth-operator/authserver/sessions"
	"github.com/hiringo/auth-operator/authserver/token"
	"github.com/hiringo/auth-operator/authserver/verifycache"
	"github.com/hiringo/auth-operator/internal/keylifecycle"
	"github.com/hiringo/auth-operator/internal/redisconf"
	"github.com/hiringo/auth-operator/internal/roles"
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
	sessionCapacity   int
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
	f.IntVar(&c.sessionCapacity, "session-capacity", 0, "sessions the session store is sized for (the operator passes spec.redis.managed.sessionCapacity), exported as authserver_redis_keys_capacity (4 keys each); 0: unknown")
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
	return withServeEnv(cmd)
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
	if c.sessionCapacity < 0 {
		errs = append(errs, errors.New("--session-capacity must not be negative"))
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
		errs = append(errs, roles.CheckReplicaAcks(rc, c.redisMinReplicas))
	}
	if c.redis.DB < 0 {
		errs = append(errs, errors.New("--redis-db must not be negative"))
	}
	return errors.Join(errs...)
}

func newLogger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: l})), nil
}

// serve runs the server of the configured role until ctx ends, then drains.
func serve(ctx context.Context, c serveConfig) error {
	if err := c.validate(); err != nil {
		return err
	}
	cfg, err := c.config()
	if err != nil {
		return err
	}
	newServer := roles.NewVerifier
	if httpapi.Role(c.role) == httpapi.RoleIssuer {
		newServer = roles.NewIssuer
	}
	srv, err := newServer(ctx, cfg)
	if err != nil {
		return err
	}
	return srv.Run(ctx)
}

// config is the server's configuration of validated flags.
func (c serveConfig) config() (roles.Config, error) {
	log, err := newLogger(c.logLevel)
	if err != nil {
		return roles.Config{}, err
	}
	redis := c.redis
	redis.Mode, _ = blacklist.ParseMode(c.redisMode)
	introspection, _ := clientauth.ParseClients(c.introspectClients)
	issuanceClients, _ := clientauth.ParseClients(c.issuanceClients)
	return roles.Config{
		Listen: c.listen, AdminListen: c.adminListen, TLSCertFile: c.tlsCertFile, TLSKeyFile: c.tlsKeyFile,
		KeysDir: c.keysDir, Redis: redis, RedisKeyPrefix: c.redisKeyPrefix,
		ReplicaAcks: blacklist.ReplicaAcks{Min: c.redisMinReplicas}, KeysCapacity: int64(c.sessionCapacity) * redisconf.KeysPerSession,
		Leeway: c.leeway, MaxTokenBytes: c.maxTokenBytes, Issuer: c.issuer,
		Audiences: c.audiences, RequireAudience: c.requireAudience, Lifetimes: c.lifetimes(),
		CORSOrigins: c.corsOrigins, CompatStatusCodes: c.compatStatusCodes, JWKSMaxAge: c.jwksMaxAge,
		VerifyCacheSize: c.verifyCacheSize, TokenServiceURL: c.tokenServiceURL,
		IntrospectionClients: introspection, IssuanceClients: issuanceClients,
		ClientAudience: c.clientAudience, Kubeconfig: c.kubeconfig,
		SingleSession: c.singleSession, RefreshGrace: c.refreshGrace, RefreshesPerMinute: c.refreshesPerMin,
		SessionMaxLifetime: c.sessionMaxLife, KeysSecret: c.keysSecret, UserLogoutsConfigMap: c.userLogouts,
		StoreStateConfigMap: c.storeState, Namespace: c.namespace, OTLPEndpoint: c.otlpEndpoint,
		ShutdownDelay: c.shutdownDelay, ShutdownTimeout: c.shutdownTimeout, Logger: log,
	}, nil
}
