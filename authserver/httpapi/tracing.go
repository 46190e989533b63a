package httpapi

import (
	"net/http"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/hiringo/auth-operator/authserver/tracing"
)

// traced wraps one route in a server span named "METHOD path" with http.route path,
// when tracing is on; off, the route is returned as it is, so that it costs nothing.
func (s *Server) traced(path string, h http.Handler) http.Handler {
	tp := s.cfg.TracerProvider
	if tp == nil {
		return h
	}
	return otelhttp.NewHandler(h, path,
		otelhttp.WithTracerProvider(tp),
		otelhttp.WithPropagators(tracing.Propagator()),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return spanMethod(r.Method) + " " + path }),
		otelhttp.WithSpanOptions(trace.WithAttributes(attribute.String("http.route", path))),
	)
}

// spanMethod is the method in a span name: an unknown one is "HTTP", as the semantic
// conventions say, so that made-up methods do not multiply span names.
func spanMethod(m string) string {
	if methodIndex(m) == len(methodLabels) {
		return "HTTP"
	}
	return m
}
