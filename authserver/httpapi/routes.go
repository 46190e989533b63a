package httpapi

import (
	"fmt"
	"net/http"

	"github.com/klauspost/compress/gzhttp"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// gzipMinSize is the smallest body worth compressing: the short envelopes of logout and
// verify are sent as they are, the JWKS is compressed.
const gzipMinSize = 256

// routes builds the mux and wraps it in the middleware every response gets.
func (s *Server) routes() (http.Handler, error) {
	m := newHTTPMetrics(s.cfg.Registry)
	mux := http.NewServeMux()
	handle := func(path, route string, h http.HandlerFunc) {
		mux.Handle(path, m.instrument(route, h))
	}
	handle("/auth/logout", "logout", s.logout)
	handle("/auth/verify", "verify", s.verify)
	handle("/.well-known/jwks.json", "jwks", s.jwks)
	handle("/auth/public-key", "public_key", s.publicKey)
	handle("/healthz", "healthz", s.healthz)
	handle("/readyz", "readyz", s.readyz)
	mux.Handle("/metrics", m.instrument("metrics", promhttp.HandlerFor(s.cfg.Registry, promhttp.HandlerOpts{})))
	mux.Handle("/", m.instrument("not_found", http.HandlerFunc(notFound)))

	gz, err := gzhttp.NewWrapper(gzhttp.MinSize(gzipMinSize))
	if err != nil {
		return nil, fmt.Errorf("configuring compression: %w", err)
	}
	var h http.Handler = gz(mux)
	h = limitBody(h, s.cfg.MaxBodyBytes)
	h = newCORS(s.cfg.CORSOrigins).Handler(h)
	h = securityHeaders(h)
	return h, nil
}

func notFound(w http.ResponseWriter, _ *http.Request) {
	writeError(w, http.StatusNotFound, msgNotFound)
}
