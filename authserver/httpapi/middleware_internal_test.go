package httpapi

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestRecoverPanics_AnswersTheEnvelopeAndLogs(t *testing.T) {
	var logs bytes.Buffer
	h := recoverPanics(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") }),
		slog.New(slog.NewJSONHandler(&logs, nil)))
	req := httptest.NewRequest(http.MethodGet, "/auth/verify", nil)
	req.Header.Set("Authorization", "Bearer secret.token.value")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusInternalServerError || rec.Body.String() != `{"success":false,"message":"Internal Server Error","payload":null}` {
		t.Errorf("got %d %s", rec.Code, rec.Body)
	}
	if !strings.Contains(logs.String(), "boom") || strings.Contains(logs.String(), "secret.token.value") {
		t.Errorf("log = %s", logs.String())
	}
}

func TestLogRequests_OnlyAtDebug(t *testing.T) {
	next := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
	var logs bytes.Buffer
	quiet := logRequests(next, slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo})))
	quiet.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/healthz", nil))
	if logs.Len() != 0 {
		t.Errorf("logged at info level: %s", logs.String())
	}
	loud := logRequests(next, slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	loud.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/healthz", nil))
	if !strings.Contains(logs.String(), `"status":418`) || !strings.Contains(logs.String(), `"path":"/healthz"`) {
		t.Errorf("debug log = %s", logs.String())
	}
}

// TestTraced_OffLeavesTheRouteUnwrapped: without a tracer provider a route is the
// handler itself, so tracing off costs nothing per request.
func TestTraced_OffLeavesTheRouteUnwrapped(t *testing.T) {
	h := http.FileServer(http.Dir("."))
	if got := (&Server{}).traced("/auth/verify", h); got != h {
		t.Errorf("traced without a provider = %T, want the handler itself", got)
	}
}
