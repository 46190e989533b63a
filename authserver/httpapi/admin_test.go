package httpapi_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestAdminPort_HoldsHealthAndMetrics checks that health, readiness and metrics answer on
// the admin handler only: the API port, which the Service exposes, answers them 404.
func TestAdminPort_HoldsHealthAndMetrics(t *testing.T) {
	h := newHarness(t, nil)
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		h.do(http.MethodGet, path, "").expect(t, http.StatusNotFound, errorBody("Not Found"))
	}
	h.admin("/healthz").expect(t, http.StatusOK, `{"success":true,"message":"ok","payload":null}`)
	h.admin("/readyz").expect(t, http.StatusOK, readyBody("available"))
	if r := h.admin("/metrics"); r.StatusCode != http.StatusOK || !strings.Contains(r.body, "authserver_http_requests_total") {
		t.Errorf("admin /metrics: %d %.200s", r.StatusCode, r.body)
	}
	// The API's routes are not on the admin port.
	h.admin("/.well-known/jwks.json").expect(t, http.StatusNotFound, errorBody("Not Found"))
}
