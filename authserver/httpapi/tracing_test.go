package httpapi_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/hiringo/auth-operator/internal/testutil/tokentest"
)

func withTracing(tp trace.TracerProvider) harnessOption {
	return func(c *harnessConfig) { c.cfg.TracerProvider = tp }
}

// TestTracing_SpansForVerifyAndLogoutWithTheirRedisCalls records the spans of a
// verify that arrives inside a caller's trace (traceparent) and of a logout, against a
// real Redis: one server span per request named for its route, continuing the
// caller's trace, with its Redis round trip as a client child span; no span for the
// Redis traffic outside requests (the revocation subscription), no token in any
// attribute.
func TestTracing_SpansForVerifyAndLogoutWithTheirRedisCalls(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(t.Context()) })
	h := newHarness(t, nil, onRedis, withTracing(tp))
	tok := tokentest.Issue(t, h.set, 15*time.Minute)
	const callerTrace, callerSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	if r := h.do(http.MethodGet, "/auth/verify", tok, "traceparent", "00-"+callerTrace+"-"+callerSpan+"-01"); r.StatusCode != http.StatusOK {
		t.Fatalf("verify: %d %s", r.StatusCode, r.body)
	}
	h.do(http.MethodPost, "/auth/logout", tok).expect(t, http.StatusOK, `{"success":true,"message":"Success","payload":{"id":"`+tokentest.SeedUser.ID+`"}}`)

	spans := rec.Ended()
	byName := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		t.Logf("%s kind=%s parent=%s trace=%s attrs=%v", s.Name(), s.SpanKind(), s.Parent().SpanID(), s.SpanContext().TraceID(), s.Attributes())
		byName[s.Name()] = s
		for _, a := range s.Attributes() {
			for _, part := range append(strings.Split(tok, "."), tok) {
				if strings.Contains(a.Value.String(), part) {
					t.Errorf("span %s attribute %s holds part of the token", s.Name(), a.Key)
				}
			}
		}
	}
	// The logout's script runs by its SHA-1; a Redis that does not have it yet answers
	// NOSCRIPT and gets the source: one more span, "eval".
	if _, loaded := byName["eval"]; len(spans) != 4 && (!loaded || len(spans) != 5) {
		t.Fatalf("%d spans, want a server and a Redis span for each of the two requests (and eval after a NOSCRIPT)", len(spans))
	}
	for _, tc := range []struct {
		server, method, route, redis string
	}{
		{"GET /auth/verify", "GET", "/auth/verify", "mget"},
		{"POST /auth/logout", "POST", "/auth/logout", "evalsha"},
	} {
		srv, ok := byName[tc.server]
		if !ok {
			t.Errorf("no span %q", tc.server)
			continue
		}
		want := map[string]string{"http.route": tc.route, "http.request.method": tc.method, "http.response.status_code": "200"}
		got := attrs(srv.Attributes())
		for k, v := range want {
			if got[k] != v {
				t.Errorf("span %s: %s = %q, want %q", tc.server, k, got[k], v)
			}
		}
		if srv.SpanKind() != trace.SpanKindServer {
			t.Errorf("span %s kind %s, want server", tc.server, srv.SpanKind())
		}
		redis, ok := byName[tc.redis]
		if !ok {
			t.Errorf("no Redis span %q for %s", tc.redis, tc.server)
			continue
		}
		if redis.SpanKind() != trace.SpanKindClient || redis.Parent().SpanID() != srv.SpanContext().SpanID() ||
			redis.SpanContext().TraceID() != srv.SpanContext().TraceID() || attrs(redis.Attributes())["db.system"] != "redis" {
			t.Errorf("Redis span %s: kind %s, parent %s (want %s), db.system %q: want a client child of %s",
				tc.redis, redis.SpanKind(), redis.Parent().SpanID(), srv.SpanContext().SpanID(), attrs(redis.Attributes())["db.system"], tc.server)
		}
	}
	verify := byName["GET /auth/verify"]
	if verify.SpanContext().TraceID().String() != callerTrace || verify.Parent().SpanID().String() != callerSpan {
		t.Errorf("verify span in trace %s under %s, want the caller's %s under %s", verify.SpanContext().TraceID(), verify.Parent().SpanID(), callerTrace, callerSpan)
	}
	if logout := byName["POST /auth/logout"]; logout.Parent().IsValid() {
		t.Errorf("the logout, called without a trace, has parent %s", logout.Parent().SpanID())
	}
}

func attrs(kv []attribute.KeyValue) map[string]string {
	m := map[string]string{}
	for _, a := range kv {
		m[string(a.Key)] = a.Value.String()
	}
	return m
}

// TestTracing_RecordsTheRouteNotThePathAndNoClientData: a forward-auth check that Envoy
// sends with the protected path appended, from a browser behind a proxy, leaves a span
// with the route alone: no protected path or query, no user agent, no client or peer
// address, and the handler still sees the request as it came (its answer is the check's).
func TestTracing_RecordsTheRouteNotThePathAndNoClientData(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(t.Context()) })
	h := newHarness(t, nil, withTracing(tp))
	tok := tokentest.Issue(t, h.set, 15*time.Minute)
	const protected, agent, client = "/auth/verify/patients/4711/records", "Mozilla/5.0 (Secret Browser)", "203.0.113.77"
	for _, tc := range []struct{ name, path, route string }{
		{"forward auth below the check", protected + "?ssn=123-45-6789", "/auth/verify"},
		{"an unknown path", "/admin/patients/4711", "/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec.Reset()
			h.do(http.MethodGet, tc.path, tok, "User-Agent", agent, "X-Forwarded-For", client)
			spans := rec.Ended()
			if len(spans) == 0 {
				t.Fatal("no span")
			}
			var server sdktrace.ReadOnlySpan
			for _, s := range spans {
				if s.SpanKind() == trace.SpanKindServer {
					server = s
				}
			}
			if server == nil {
				t.Fatal("no server span")
			}
			got := attrs(server.Attributes())
			t.Logf("%s %v", server.Name(), got)
			if got["http.route"] != tc.route || server.Name() != "GET "+tc.route {
				t.Errorf("span %q route %q, want GET %s", server.Name(), got["http.route"], tc.route)
			}
			for k, v := range got {
				for _, secret := range []string{"patients", "4711", "ssn", agent, client, tok} {
					if strings.Contains(v, secret) {
						t.Errorf("attribute %s = %q records client data (%q)", k, v, secret)
					}
				}
			}
			for _, k := range []string{"url.path", "url.query", "user_agent.original", "client.address", "network.peer.address"} {
				if _, ok := got[k]; ok {
					t.Errorf("attribute %s recorded", k)
				}
			}
		})
	}
	// The handler saw the path as it came: the check below /auth/verify answered 200.
	if r := h.do(http.MethodGet, protected, tok); r.StatusCode != http.StatusOK {
		t.Errorf("forward auth below the check with tracing on: %d %s", r.StatusCode, r.body)
	}
}
