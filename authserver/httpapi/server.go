package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/hiringo/auth-operator/authserver/issuance"
	"github.com/hiringo/auth-operator/authserver/token"
	"github.com/hiringo/auth-operator/authserver/verifycache"
	"github.com/hiringo/auth-operator/internal/serverenv"
)

// Sessions verifies and logs out tokens (sessions.Service). Errors:
// *token.InvalidError, token.ErrNoKeys, blacklist.ErrRevoked, else the store is down.
type Sessions interface {
	Verify(ctx context.Context, raw string) (verifycache.Principal, error)
	Logout(ctx context.Context, raw string) (token.Verified, error)
	LogoutAll(ctx context.Context, raw string) (token.Verified, error)
	// Revoke is RFC 7009 revocation on behalf of a client (sessions.Service.Revoke); it
	// fails for a token of another client (sessions.ErrOtherClient) and when the keys or
	// the store cannot answer.
	Revoke(ctx context.Context, raw string, refreshFirst bool, clientID string) (token.Verified, bool, error)
}

// Issuance issues and refreshes sessions (issuance.Service). Errors as Sessions',
// and blacklist.ErrReuse (an *issuance.ReuseError), *blacklist.RateLimitedError,
// blacklist.ErrStoreFull, issuance.ErrNoSigningKey.
type Issuance interface {
	Issue(ctx context.Context, u token.User, clientID string) (issuance.Pair, error)
	Refresh(ctx context.Context, raw string) (issuance.Pair, error)
}

// Pinger is the revocation store as readiness uses it.
type Pinger interface {
	// Ping checks that the store answers.
	Ping(ctx context.Context) error
}

// Role is which half of the service a server is.
type Role string

const (
	// RoleVerifier serves logout, verify, the key documents and discovery; it holds
	// public key material only.
	RoleVerifier Role = serverenv.RoleVerifier
	// RoleIssuer serves token issuance and refresh; it holds the private keys.
	RoleIssuer Role = serverenv.RoleIssuer
)

// Config is everything the API needs.
type Config struct {
	// Role selects the routes; RoleVerifier when empty.
	Role Role
	// Issuance and Clients serve the issuer's routes: Clients authorizes the callers of
	// issuance and revocation.
	Issuance Issuance
	Clients  Authorizer
	// Introspection authorizes the callers of introspection on the verifier; nil: no
	// caller may introspect (403).
	Introspection Authorizer
	// Issuer is the iss of the discovery document; discovery answers 404 without it.
	// Its jwks_uri and introspection_endpoint are under it: the verifier serves it.
	Issuer string
	// TokenServiceURL is the base URL of the issuer (issuance, refresh, revocation), for
	// the discovery document's token_endpoint and revocation_endpoint; left out of the
	// document when empty.
	TokenServiceURL string
	Keys            token.KeySource
	// Sessions verifies and logs out tokens.
	Sessions Sessions
	// Store is the revocation store, checked by /readyz.
	Store Pinger
	// CompatStatusCodes answers as the original did: 400 for a missing token and 500 for
	// a blacklisted one on logout. Bodies are the same either way.
	CompatStatusCodes bool
	// CORSOrigins are the origins allowed to call the API from a browser; "*" allows any.
	CORSOrigins []string
	// JWKSMaxAge is the Cache-Control max-age of the JWKS and public key.
	JWKSMaxAge time.Duration
	// MaxBodyBytes is the largest request body accepted; default 64 KiB.
	MaxBodyBytes int64
	Logger       *slog.Logger
	// TracerProvider, when set, gives every route a server span (tracing); nil leaves
	// the routes unwrapped.
	TracerProvider trace.TracerProvider
	// Registry receives the API's metrics and is served at /metrics of the admin handler.
	Registry *prometheus.Registry
}

// Server is the API's http.Handler.
type Server struct {
	cfg Config
	// discovery is the discovery document, marshalled once; nil without an issuer.
	discovery []byte
	handler   http.Handler
	admin     http.Handler
	draining  atomic.Bool
}

// New builds the API handler with every route and middleware.
func New(cfg Config) (*Server, error) {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 64 << 10
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Role == "" {
		cfg.Role = RoleVerifier
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	s := &Server{cfg: cfg}
	if d := discovery(cfg); d != nil {
		body, err := json.Marshal(d)
		if err != nil {
			return nil, fmt.Errorf("encoding the discovery document: %w", err)
		}
		s.discovery = body
	}
	m := newHTTPMetrics(cfg.Registry)
	h, err := s.routes(m)
	if err != nil {
		return nil, err
	}
	s.handler = h
	if s.admin, err = s.adminRoutes(m); err != nil {
		return nil, err
	}
	return s, nil
}

// ServeHTTP serves one request of the API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Admin is the handler of the admin port: /healthz, /readyz and /metrics, which the
// kubelet and Prometheus call and the API's Service does not expose.
func (s *Server) Admin() http.Handler { return s.admin }

// Drain makes /readyz fail so that load balancers stop sending new requests while the
// process finishes the ones it has.
func (s *Server) Drain() { s.draining.Store(true) }
