package httpapi_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/hiringo/auth-operator/internal/testutil/tokentest"
)

// TestVerify_CORSPreflightWithoutTokenIs401 sends the preflight a browser sends, as a
// proxy that forwards the method (Traefik preserveRequestMethod, Lua or Kong gates) passes
// it on: without a token the check must refuse it, whatever origins are allowed.
func TestVerify_CORSPreflightWithoutTokenIs401(t *testing.T) {
	for _, origins := range [][]string{nil, {"*"}, {"https://app.example.com"}} {
		h := newHarness(t, nil, corsOrigins(origins...))
		for _, path := range []string{"/auth/verify", "/auth/verify/orders/1"} {
			r := h.do(http.MethodOptions, path, "",
				"Origin", "https://app.example.com", "Access-Control-Request-Method", "GET", "Access-Control-Request-Headers", "authorization")
			r.expect(t, http.StatusUnauthorized, errorBody("missing or malformed jwt"))
			if acao := r.Header.Get("Access-Control-Allow-Origin"); acao != "" {
				t.Errorf("origins %v, preflight to %s: Access-Control-Allow-Origin = %q, want none", origins, path, acao)
			}
		}
		// The browser-facing routes keep answering preflights.
		pre := h.do(http.MethodOptions, "/auth/logout", "",
			"Origin", "https://app.example.com", "Access-Control-Request-Method", "POST")
		if pre.StatusCode != http.StatusNoContent {
			t.Errorf("origins %v, preflight to /auth/logout: %d %s", origins, pre.StatusCode, pre.body)
		}
	}
}

// TestVerify_AsProxiesSendIt sends the check requests that the proxy configurations of
// docs/authserver.md make: Envoy's ext_authz (path_prefix /auth/verify, the original
// method and path appended, no body), Traefik's ForwardAuth (GET to the address with
// X-Forwarded-*, or the original method with preserveRequestMethod) and nginx's
// auth_request (the original method, no body). A valid token passes with the user's
// headers whatever the method and path; no token is 401.
func TestVerify_AsProxiesSendIt(t *testing.T) {
	h := newHarness(t, nil)
	tok := tokentest.Issue(t, h.set, 15*time.Minute)
	traefikHeaders := []string{"X-Forwarded-Method", "DELETE", "X-Forwarded-Proto", "https",
		"X-Forwarded-Host", "shop.example.com", "X-Forwarded-Uri", "/orders/1?x=1", "X-Forwarded-For", "203.0.113.7"}
	cases := []struct {
		name, method, path string
		headers            []string
	}{
		{"envoy GET", http.MethodGet, "/auth/verify/orders/1?x=1", []string{"Content-Length", "0", "X-Envoy-Expected-Rq-Timeout-Ms", "250"}},
		{"envoy PUT", http.MethodPut, "/auth/verify/orders/1", []string{"Content-Length", "0"}},
		{"envoy PATCH", http.MethodPatch, "/auth/verify/orders/1", []string{"Content-Length", "0"}},
		{"envoy DELETE", http.MethodDelete, "/auth/verify/orders/1", []string{"Content-Length", "0"}},
		{"envoy root", http.MethodGet, "/auth/verify/", nil},
		{"envoy unnormalized path", http.MethodGet, "/auth/verify//orders/../admin/./x", nil},
		{"traefik", http.MethodGet, "/auth/verify", traefikHeaders},
		{"traefik preserveRequestMethod", http.MethodDelete, "/auth/verify", traefikHeaders},
		{"nginx auth_request PUT", http.MethodPut, "/auth/verify", []string{"Content-Length", ""}},
		{"nginx auth_request PATCH", http.MethodPatch, "/auth/verify", nil},
		{"HEAD", http.MethodHead, "/auth/verify/x", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := h.do(c.method, c.path, tok, c.headers...)
			if r.StatusCode != http.StatusOK || r.Header.Get("X-Auth-User-Id") != tokentest.SeedUser.ID ||
				r.Header.Get("X-Auth-Session-Id") != tokentest.SeedUser.Auth.ID {
				t.Errorf("valid token: %d %v %s", r.StatusCode, r.Header, r.body)
			}
			r = h.do(c.method, c.path, "", c.headers...)
			if r.StatusCode != http.StatusUnauthorized || r.Header.Get("X-Auth-User-Id") != "" {
				t.Errorf("no token: %d %v %s", r.StatusCode, r.Header, r.body)
			}
		})
	}
	// Only the check's own prefix is the check.
	h.do(http.MethodGet, "/auth/verifyx", tok).expect(t, http.StatusNotFound, errorBody("Not Found"))
}
