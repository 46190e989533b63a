package roles

import (
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/hiringo/auth-operator/authserver/blacklist"
	"github.com/hiringo/auth-operator/authserver/clientauth"
	"github.com/hiringo/auth-operator/authserver/httpapi"
	"github.com/hiringo/auth-operator/authserver/keyset"
	"github.com/hiringo/auth-operator/authserver/sessions"
)

// Config is a server of either role, as the flags of `authserver serve` set it
// (docs/authserver-flags.md); the issuer's and the verifier's own settings are ignored
// by the other role.
type Config struct {
	// Listen and AdminListen are the addresses of the API and of /healthz, /readyz and
	// /metrics; ":0" picks a free port (Server.Addr and AdminAddr tell it).
	Listen, AdminListen string
	// TLSCertFile and TLSKeyFile, when set, serve the API over TLS.
	TLSCertFile, TLSKeyFile string
	// KeysDir is the mounted key Secret (the public projection for a verifier).
	KeysDir string
	// Redis reaches the session store; ModeAuto asks the one address what it is.
	Redis          blacklist.ClientConfig
	RedisKeyPrefix string
	ReplicaAcks    blacklist.ReplicaAcks
	// KeysCapacity is the keys the session store is sized for (0: unknown).
	KeysCapacity int64

	Leeway          time.Duration
	MaxTokenBytes   int
	Issuer          string
	Audiences       []string
	RequireAudience bool
	// Lifetimes are the tokens' lifetimes; an access token that lived longer is refused.
	Lifetimes sessions.Lifetimes

	CORSOrigins       []string
	CompatStatusCodes bool
	JWKSMaxAge        time.Duration
	// VerifyCacheSize is the verifier's cache of verified tokens; 0 for none.
	VerifyCacheSize int
	// TokenServiceURL is the issuer's base URL, for the verifier's discovery document.
	TokenServiceURL string
	// IntrospectionClients may introspect on the verifier; IssuanceClients may obtain
	// and revoke tokens on the issuer. Both are authenticated by TokenReviews of
	// ServiceAccount tokens for ClientAudience, through the Kubernetes API of
	// Kubeconfig (in-cluster when empty).
	IntrospectionClients, IssuanceClients []clientauth.ServiceAccount
	ClientAudience, Kubeconfig            string

	// The issuer's session policy.
	SingleSession      bool
	RefreshGrace       time.Duration
	RefreshesPerMinute int
	SessionMaxLifetime time.Duration
	// KeysSecret, UserLogoutsConfigMap and StoreStateConfigMap, in Namespace, are the
	// objects the issuer follows or writes through the Kubernetes API; each is optional.
	KeysSecret, UserLogoutsConfigMap, StoreStateConfigMap, Namespace string

	// OTLPEndpoint exports traces (tracing.Enabled says when, with the OTEL_* variables).
	OTLPEndpoint string
	// ShutdownDelay is how long a draining server keeps serving with /readyz failing;
	// ShutdownTimeout how long it then waits for requests in flight.
	ShutdownDelay, ShutdownTimeout time.Duration
	Logger                         *slog.Logger

	// What a caller may provide itself; each is made from the settings above when nil.

	// Store replaces the Redis store: the server then follows no revocation channel and
	// watches no store generation (an in-memory store of unit tests).
	Store Store
	// Clients and Introspection authorize the callers of the issuer and of
	// introspection, instead of TokenReviews.
	Clients, Introspection httpapi.Authorizer
	// TracerProvider traces the routes and the Redis client, instead of OTLPEndpoint's.
	TracerProvider trace.TracerProvider
	// Registry receives the metrics; a new one with the Go and process collectors.
	Registry *prometheus.Registry
	// Now is the server's clock: of token checks, the verify cache and revocations'
	// expiries (Redis' clock still stamps iat and cutoffs); time.Now when nil.
	Now func() time.Time
	// KeyReload and Follow tune how the key directory is reloaded (Private is the
	// role's) and how the revocation channel is followed; zero values are the defaults.
	KeyReload keyset.Options
	Follow    blacklist.FollowOptions
}

// Store is a session and revocation store the server can be given.
type Store interface {
	sessions.Store
	httpapi.Pinger
}
