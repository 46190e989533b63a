package httpapi

import (
	"fmt"
	"net/http"

	"github.com/klauspost/compress/gzhttp"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// gzipMinSize is the smallest body worth compressing.
const gzipMinSize = 256

// routes builds the mux and wraps it in the middleware every response gets.
func (s *Server) routes() (http.Handler, error) {
	m := newHTTPMetrics(s.cfg.Registry)
	gz, err := gzhttp.NewWrapper(gzhttp.MinSize(gzipMinSize))
	if err != nil {
		return nil, fmt.Errorf("configuring compression: %w", err)
	}
	mux := http.NewServeMux()
	handle := func(path, route string, h http.Handler) {
		mux.Handle(path, m.instrument(route, h))
	}
	// Logout, verify and the health checks answer short envelopes that are never
	// worth compressing; they skip the compression wrapper, which is on the hot path.
	if s.cfg.Role == RoleIssuer {
		handle("/auth/token", "token", http.HandlerFunc(s.issue))
		handle("/auth/refresh", "refresh", http.HandlerFunc(s.refresh))
	} else {
		handle("/auth/logout", "logout", http.HandlerFunc(s.logout))
		handle("/auth/logout/all", "logout_all", http.HandlerFunc(s.logoutAll))
		handle("/auth/verify", "verify", http.HandlerFunc(s.verify))
		handle("/.well-known/jwks.json", "jwks", gz(http.HandlerFunc(s.jwks)))
		handle("/.well-known/openid-configuration", "openid_configuration", gz(http.HandlerFunc(s.openIDConfiguration)))
		handle("/auth/public-key", "public_key", gz(http.HandlerFunc(s.publicKey)))
	}
	handle("/healthz", "healthz", http.HandlerFunc(s.healthz))
	handle("/readyz", "readyz", http.HandlerFunc(s.readyz))
	handle("/metrics", "metrics", gz(promhttp.HandlerFor(s.cfg.Registry, promhttp.HandlerOpts{})))
	handle("/", "not_found", http.HandlerFunc(notFound))

	var h http.Handler = mux
	h = limitBody(h, s.cfg.MaxBodyBytes)
	h = newCORS(s.cfg.CORSOrigins).Handler(h)
	h = securityHeaders(h)
	h = recoverPanics(h, s.cfg.Logger)
	h = logRequests(h, s.cfg.Logger)
	return h, nil
}

func notFound(w http.ResponseWriter, _ *http.Request) {
	writeError(w, http.StatusNotFound, msgNotFound)
}
