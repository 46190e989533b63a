package httpapi

import (
	"context"
	"net/http"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/hiringo/auth-operator/authserver/tracing"
)

// originalRequestKey carries the request as it came past the span's start (see traced).
type originalRequestKey struct{}

// traced wraps one route in a server span named "METHOD route" with http.route route,
// when tracing is on; off, the route is returned as it is, so that it costs nothing.
//
// The span records the route, never the path: behind Envoy's ext_authz every protected
// path arrives below /auth/verify, and a trace backend would collect them all. Nor does it
// record client data (user agent, client or peer address, X-Forwarded-For): otelhttp
// takes its attributes from the request it is given, so it is given a copy without them,
// and the route's handler gets the request as it came.
func (s *Server) traced(route string, h http.Handler) http.Handler {
	tp := s.cfg.TracerProvider
	if tp == nil {
		return h
	}
	restore := http.HandlerFunc(func(w http.ResponseWriter, scrubbed *http.Request) {
		original, _ := scrubbed.Context().Value(originalRequestKey{}).(*http.Request)
		h.ServeHTTP(w, original.WithContext(scrubbed.Context()))
	})
	span := otelhttp.NewHandler(restore, route,
		otelhttp.WithTracerProvider(tp),
		otelhttp.WithPropagators(tracing.Propagator()),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return spanMethod(r.Method) + " " + route }),
		otelhttp.WithSpanOptions(trace.WithAttributes(attribute.String("http.route", route))),
	)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		span.ServeHTTP(w, scrubForSpan(r.WithContext(context.WithValue(r.Context(), originalRequestKey{}, r))))
	})
}

// scrubForSpan is a copy of r that shows otelhttp no path (so no url.path: the span has
// http.route) and no client data; the trace context headers stay, so a caller's trace
// continues.
func scrubForSpan(r *http.Request) *http.Request {
	c := r.Clone(r.Context())
	c.URL.Path, c.URL.RawPath, c.URL.RawQuery, c.RequestURI = "", "", "", ""
	c.RemoteAddr = ""
	for _, h := range []string{"User-Agent", "X-Forwarded-For", "X-Real-Ip", "Forwarded", "Authorization", "Cookie"} {
		c.Header.Del(h)
	}
	return c
}

// spanMethod is the method in a span name: an unknown one is "HTTP", as the semantic
// conventions say, so that made-up methods do not multiply span names.
func spanMethod(m string) string {
	if methodIndex(m) == len(methodLabels) {
		return "HTTP"
	}
	return m
}
