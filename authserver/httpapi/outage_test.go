package httpapi_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/hiringo/auth-operator/internal/testutil/redistest"
	"github.com/hiringo/auth-operator/internal/testutil/tokentest"
)

// TestRedisKilledMidTest_503ThenRecovery kills Redis under a running server: logout
// answers 503 and reports nothing as logged out, verify fails closed, and the server stays
// ready (reporting the store as unavailable) so the JWKS and public key, which need no
// Redis, stay served; after a restart everything works again and the token that could not
// be logged out can be.
func TestRedisKilledMidTest_503ThenRecovery(t *testing.T) {
	redis := redistest.Start(t, redistest.Options{AppendOnly: true})
	h := newHarness(t, redis)
	loggedOut := tokentest.Issue(t, h.set, 15*time.Minute)
	h.do(http.MethodPost, "/auth/logout", loggedOut).expect(t, http.StatusOK, `{"success":true,"message":"Success","payload":{"id":"66312a78-1f9e-4d78-a9fb-231e84967f60"}}`)
	h.admin("/readyz").expect(t, http.StatusOK, readyBody("available"))

	redis.Kill()
	pending := tokentest.Issue(t, h.set, 16*time.Minute)
	h.do(http.MethodPost, "/auth/logout", pending).expect(t, http.StatusServiceUnavailable, errorBody("blacklist store unavailable"))
	h.do(http.MethodPost, "/auth/logout", loggedOut).expect(t, http.StatusServiceUnavailable, errorBody("blacklist store unavailable"))
	for _, tok := range []string{pending, loggedOut} {
		r := h.do(http.MethodGet, "/auth/verify", tok)
		r.expect(t, http.StatusServiceUnavailable, errorBody("blacklist store unavailable"))
		if r.Header.Get("X-Auth-User-Id") != "" {
			t.Error("verify with Redis down passed user headers")
		}
	}
	h.admin("/readyz").expect(t, http.StatusOK, readyBody("unavailable"))
	h.admin("/healthz").expect(t, http.StatusOK, `{"success":true,"message":"ok","payload":null}`)
	for _, path := range []string{"/.well-known/jwks.json", "/auth/public-key"} {
		if r := h.do(http.MethodGet, path, ""); r.StatusCode != http.StatusOK {
			t.Errorf("%s with Redis down: %d %s", path, r.StatusCode, r.body)
		}
	}
	h.do(http.MethodPost, "/auth/logout", tokentest.SeedForeignToken).expect(t, http.StatusUnauthorized,
		errorBody("invalid or expired jwt, internal=crypto/ecdsa: verification error"))

	if err := redis.Restart(); err != nil {
		t.Fatal(err)
	}
	h.admin("/readyz").expect(t, http.StatusOK, readyBody("available"))
	h.do(http.MethodGet, "/auth/verify", loggedOut).expect(t, http.StatusUnauthorized, errorBody("token is blacklisted"))
	h.do(http.MethodPost, "/auth/logout", pending).expect(t, http.StatusOK, `{"success":true,"message":"Success","payload":{"id":"66312a78-1f9e-4d78-a9fb-231e84967f60"}}`)
	h.do(http.MethodGet, "/auth/verify", pending).expect(t, http.StatusUnauthorized, errorBody("token is blacklisted"))
}
