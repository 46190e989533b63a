package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/hiringo/auth-operator/authserver/tracing"
	"github.com/hiringo/auth-operator/internal/testutil/redistest"
)

// TestServe_ExportsTracesToTheOTLPEndpoint serves with --otlp-endpoint pointing at an
// OTLP/HTTP receiver on loopback: a logout's server span and its Redis span arrive,
// under service.name authserver, when serve stops (the exporter flushes).
func TestServe_ExportsTracesToTheOTLPEndpoint(t *testing.T) {
	var mu sync.Mutex
	var spans []string
	var service string
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var req collectortrace.ExportTraceServiceRequest
		if r.URL.Path != "/v1/traces" || proto.Unmarshal(body, &req) != nil {
			http.Error(w, "not an OTLP trace export", http.StatusBadRequest)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		for _, rs := range req.ResourceSpans {
			for _, a := range rs.GetResource().GetAttributes() {
				if a.Key == "service.name" {
					service = a.GetValue().GetStringValue()
				}
			}
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					spans = append(spans, s.Name)
				}
			}
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(nil)
	}))
	t.Cleanup(collector.Close)

	redis := redistest.Start(t, redistest.Options{})
	keys := filepath.Join(t.TempDir(), "keys")
	if _, err := run(t, context.Background(), "keys", "generate", "--dir", keys); err != nil {
		t.Fatal(err)
	}
	tok, err := run(t, context.Background(), "token", "issue", "--keys-dir", keys, "--user-id", "u-1", "--ttl", "5m")
	if err != nil {
		t.Fatal(err)
	}
	addr, _, stop := startServe(t, "--keys-dir", keys, "--redis-addrs", redis.Addr, "--otlp-endpoint", collector.URL)
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/auth/logout", nil)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(tok))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	if err := stop(); err != nil {
		t.Fatalf("serve: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Contains(spans, "POST /auth/logout") || !slices.Contains(spans, "evalsha") || service != "authserver" {
		t.Errorf("exported spans %v of service %q, want POST /auth/logout and its Redis evalsha from authserver", spans, service)
	}
}

func TestTracingEnabled_OnlyWithAnEndpoint(t *testing.T) {
	for _, tc := range []struct {
		flag string
		env  map[string]string
		want bool
	}{
		{"", nil, false},
		{"http://collector:4318", nil, true},
		{"", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, true},
		{"", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, true},
		{"http://collector:4318", map[string]string{"OTEL_SDK_DISABLED": "true"}, false},
		{"", map[string]string{"OTEL_SERVICE_NAME": "auth"}, false},
	} {
		if got := tracing.Enabled(tc.flag, func(k string) string { return tc.env[k] }); got != tc.want {
			t.Errorf("Enabled(%q, %v) = %v, want %v", tc.flag, tc.env, got, tc.want)
		}
	}
}
