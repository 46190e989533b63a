package httpapi

import (
	"fmt"
	"net/http"

	"github.com/klauspost/compress/gzhttp"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// adminRoutes builds the admin port's mux: health, readiness and metrics. They are off the
// API port so that callers of the API cannot read the metrics or make every replica ping
// Redis, and so a Service that exposes the API exposes nothing else.
func (s *Server) adminRoutes(m *httpMetrics) (http.Handler, error) {
	gz, err := gzhttp.NewWrapper(gzhttp.MinSize(gzipMinSize))
	if err != nil {
		return nil, fmt.Errorf("configuring compression: %w", err)
	}
	mux := http.NewServeMux()
	handle := func(path, route string, h http.Handler) {
		mux.Handle(path, m.instrument(route, h))
	}
	handle("/healthz", "healthz", http.HandlerFunc(s.healthz))
	handle("/readyz", "readyz", http.HandlerFunc(s.readyz))
	handle("/metrics", "metrics", gz(promhttp.HandlerFor(s.cfg.Registry, promhttp.HandlerOpts{})))
	handle("/", "not_found", http.HandlerFunc(notFound))
	var h http.Handler = mux
	h = recoverPanics(h, s.cfg.Logger)
	h = logRequests(h, s.cfg.Logger)
	return h, nil
}
