package httpapi

import (
	"fmt"
	"net/http"

	"github.com/klauspost/compress/gzhttp"
)

// gzipMinSize is the smallest body worth compressing.
const gzipMinSize = 256

// routes builds the API's mux for the server's role and wraps it in the middleware every
// response gets.
func (s *Server) routes(m *httpMetrics) (http.Handler, error) {
	gz, err := gzhttp.NewWrapper(gzhttp.MinSize(gzipMinSize))
	if err != nil {
		return nil, fmt.Errorf("configuring compression: %w", err)
	}
	// Only the routes a browser calls get CORS. The forward-auth check must not: a proxy
	// that forwards the method (Traefik's preserveRequestMethod, Lua or Kong gates) would
	// take the CORS middleware's 204 to a tokenless preflight for "allowed".
	browser := newCORS(s.cfg.CORSOrigins).Handler
	mux := http.NewServeMux()
	handle := func(path, route string, h http.Handler) {
		mux.Handle(path, s.traced(path, m.instrument(route, h)))
	}
	// Logout, verify, introspection, issuance, refresh and revocation answer short bodies
	// that are never worth compressing; they skip the compression wrapper, which is on
	// the hot path.
	if s.cfg.Role == RoleIssuer {
		// Issuance is called by in-cluster services only; refresh by browsers too.
		handle("/auth/token", "token", http.HandlerFunc(s.issue))
		handle("/auth/refresh", "refresh", browser(http.HandlerFunc(s.refresh)))
		handle("/auth/revoke", "revoke", http.HandlerFunc(s.revoke))
	} else {
		handle("/auth/logout", "logout", browser(http.HandlerFunc(s.logout)))
		handle("/auth/logout/all", "logout_all", browser(http.HandlerFunc(s.logoutAll)))
		// Introspection and revocation are called by services, never by browsers: no CORS.
		handle("/auth/introspect", "introspect", http.HandlerFunc(s.introspect))
		handle("/.well-known/jwks.json", "jwks", browser(gz(http.HandlerFunc(s.jwks))))
		handle("/.well-known/openid-configuration", "openid_configuration", browser(gz(http.HandlerFunc(s.openIDConfiguration))))
		handle("/.well-known/oauth-authorization-server", "oauth_authorization_server", browser(gz(http.HandlerFunc(s.openIDConfiguration))))
		handle("/auth/public-key", "public_key", browser(gz(http.HandlerFunc(s.publicKey))))
	}
	// A browser that calls a wrong path sees the 404 rather than a CORS failure.
	handle("/", "not_found", browser(http.HandlerFunc(notFound)))

	var h http.Handler = mux
	if s.cfg.Role != RoleIssuer {
		h = routeForwardAuth(mux, s.traced("/auth/verify", m.instrument("verify", http.HandlerFunc(s.verify))))
	}
	h = limitBody(h, s.cfg.MaxBodyBytes)
	h = securityHeaders(h)
	h = recoverPanics(h, s.cfg.Logger)
	h = logRequests(h, s.cfg.Logger)
	return h, nil
}

func notFound(w http.ResponseWriter, _ *http.Request) {
	writeError(w, http.StatusNotFound, msgNotFound)
}
