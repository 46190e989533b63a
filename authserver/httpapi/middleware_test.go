package httpapi_test

import (
	"compress/gzip"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hiringo/auth-operator/internal/testutil/tokentest"
)

func TestUnknownRouteIs404Envelope(t *testing.T) {
	h := newHarness(t, nil)
	for _, path := range []string{"/au/logout", "/", "/auth/logout/extra", "/.well-known/other"} {
		r := h.do(http.MethodPost, path, tokentest.SeedForeignToken)
		r.expect(t, http.StatusNotFound, errorBody("Not Found"))
		assertSeedHeaders(t, r)
	}
}

func TestCORS_AllowsConfiguredOriginsOnly(t *testing.T) {
	h := newHarness(t, nil, corsOrigins("https://app.example.com"))
	pre := h.do(http.MethodOptions, "/auth/logout", "",
		"Origin", "https://app.example.com", "Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "authorization")
	if pre.StatusCode != http.StatusNoContent || pre.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" ||
		!strings.Contains(strings.ToLower(pre.Header.Get("Access-Control-Allow-Headers")), "authorization") {
		t.Errorf("preflight: %d %v", pre.StatusCode, pre.Header)
	}
	r := h.do(http.MethodPost, "/auth/logout", "", "Origin", "https://app.example.com")
	if r.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" {
		t.Errorf("actual request from allowed origin: ACAO = %q", r.Header.Get("Access-Control-Allow-Origin"))
	}
	r = h.do(http.MethodPost, "/auth/logout", "", "Origin", "https://evil.example.com")
	if r.Header.Get("Access-Control-Allow-Origin") != "" || !hasValue(r.Header.Values("Vary"), "Origin") {
		t.Errorf("request from other origin: ACAO = %q, Vary = %v", r.Header.Get("Access-Control-Allow-Origin"), r.Header.Values("Vary"))
	}
	closed := newHarness(t, nil)
	r = closed.do(http.MethodPost, "/auth/logout", "", "Origin", "https://app.example.com")
	if r.Header.Get("Access-Control-Allow-Origin") != "" || !hasValue(r.Header.Values("Vary"), "Origin") {
		t.Errorf("no origins configured: ACAO = %q, Vary = %v", r.Header.Get("Access-Control-Allow-Origin"), r.Header.Values("Vary"))
	}
}

func TestGzip_ForClientsThatAcceptIt(t *testing.T) {
	h := newHarness(t, nil)
	r := h.do(http.MethodGet, "/.well-known/jwks.json", "", "Accept-Encoding", "gzip, deflate, br")
	if r.Header.Get("Content-Encoding") != "gzip" || !hasValue(r.Header.Values("Vary"), "Accept-Encoding") {
		t.Fatalf("Content-Encoding = %q, Vary = %v", r.Header.Get("Content-Encoding"), r.Header.Values("Vary"))
	}
	zr, err := gzip.NewReader(strings.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(plain), `{"keys":[`) {
		t.Errorf("decompressed JWKS = %s", plain)
	}
	if r := h.do(http.MethodGet, "/.well-known/jwks.json", ""); r.Header.Get("Content-Encoding") != "" {
		t.Errorf("compressed for a client that did not ask: %q", r.Header.Get("Content-Encoding"))
	}
}

func TestMetrics_CountRequestsBlacklistAndKeys(t *testing.T) {
	h := newHarness(t, nil, onRedis)
	tok := tokentest.Issue(t, h.set, 15*time.Minute)
	h.do(http.MethodPost, "/auth/logout", tok)
	h.do(http.MethodPost, "/auth/logout", tok)
	h.do(http.MethodGet, "/auth/verify", tok)
	r := h.admin("/metrics")
	for _, want := range []string{
		`authserver_http_requests_total{code="200",method="post",route="logout"} 1`,
		`authserver_http_requests_total{code="401",method="post",route="logout"} 1`,
		`authserver_http_requests_total{code="401",method="get",route="verify"} 1`,
		`authserver_http_request_duration_seconds_bucket{method="post",route="logout",le="0.001"}`,
		`authserver_blacklist_operations_total{op="add",result="added"} 1`,
		`authserver_blacklist_operations_total{op="add",result="exists"} 1`,
		`authserver_blacklist_operations_total{op="check",result="listed"} 1`,
		`authserver_key_reloads_total{result="success"} 1`,
		`authserver_active_key_info{kid="` + tokentest.Active(t, h.set).ID + `"} 1`,
	} {
		if !strings.Contains(r.body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(r.body, tok) || strings.Contains(r.body, strings.Split(tok, ".")[2]) {
		t.Error("metrics contain the token")
	}
}

func TestReadyz_FailsWhileDraining(t *testing.T) {
	h := newHarness(t, nil)
	h.admin("/readyz").expect(t, http.StatusOK, readyBody("available"))
	h.api.Drain()
	h.admin("/readyz").expect(t, http.StatusServiceUnavailable, errorBody("shutting down"))
	h.admin("/healthz").expect(t, http.StatusOK, `{"success":true,"message":"ok","payload":null}`)
}
