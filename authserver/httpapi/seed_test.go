package httpapi_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/hiringo/auth-operator/internal/testutil/tokentest"
)

// The seed's three recorded exchanges, with seed-shaped tokens re-signed by a key of
// the set (the recorded ones expired in 2021).

func TestLogout_SeedExchange1_ValidTokenLogsOut(t *testing.T) {
	h := newHarness(t, nil)
	tok := tokentest.IssueSeedShaped(t, h.set, 15*time.Minute)
	r := h.do(http.MethodPost, "/auth/logout", tok, "Accept-Encoding", "gzip, deflate, br")
	r.expect(t, http.StatusOK, `{"success":true,"message":"Success","payload":{"id":"66312a78-1f9e-4d78-a9fb-231e84967f60"}}`)
	if got := r.Header.Get("Content-Type"); got != "application/json; charset=UTF-8" {
		t.Errorf("Content-Type = %q", got)
	}
	assertSeedHeaders(t, r)
}

func TestLogout_SeedExchange2_ForeignKeyIsVerificationError(t *testing.T) {
	h := newHarness(t, nil)
	foreign := tokentest.Sign(t, tokentest.ForeignKey(t), "", tokentest.Claims(15*time.Minute))
	for _, tok := range []string{foreign, tokentest.SeedForeignToken} {
		r := h.do(http.MethodPost, "/auth/logout", tok)
		r.expect(t, http.StatusUnauthorized, `{"success":false,"message":"invalid or expired jwt, internal=crypto/ecdsa: verification error","payload":null}`)
		assertSeedHeaders(t, r)
	}
}

func TestLogout_SeedExchange3_SecondLogoutIsBlacklisted(t *testing.T) {
	for _, tc := range []struct {
		name   string
		opts   []harnessOption
		status int
	}{
		{"default", nil, http.StatusUnauthorized},
		{"compat status codes", []harnessOption{compat}, http.StatusInternalServerError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil, tc.opts...)
			tok := tokentest.IssueSeedShaped(t, h.set, 15*time.Minute)
			h.do(http.MethodPost, "/auth/logout", tok).expect(t, http.StatusOK, `{"success":true,"message":"Success","payload":{"id":"66312a78-1f9e-4d78-a9fb-231e84967f60"}}`)
			r := h.do(http.MethodPost, "/auth/logout", tok)
			r.expect(t, tc.status, `{"success":false,"message":"token is blacklisted","payload":null}`)
			assertSeedHeaders(t, r)
		})
	}
}

func TestLogout_MissingOrMalformedAuthorization(t *testing.T) {
	for _, tc := range []struct {
		name   string
		opts   []harnessOption
		status int
	}{
		{"default", nil, http.StatusUnauthorized},
		{"compat status codes", []harnessOption{compat}, http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil, tc.opts...)
			for _, hdr := range [][]string{
				nil,
				{"Authorization", ""},
				{"Authorization", "Bearer"},
				{"Authorization", "Basic dXNlcjpwYXNz"},
				{"Authorization", "Bearer a", "Authorization", "Bearer b"},
			} {
				h.do(http.MethodPost, "/auth/logout", "", hdr...).expect(t, tc.status, errorBody("missing or malformed jwt"))
			}
		})
	}
}

func TestLogout_CompatModeKeepsOtherCodes(t *testing.T) {
	h := newHarness(t, nil, compat)
	h.do(http.MethodPost, "/auth/logout", tokentest.SeedForeignToken).expect(t, http.StatusUnauthorized,
		errorBody("invalid or expired jwt, internal=crypto/ecdsa: verification error"))
}

func assertSeedHeaders(t *testing.T, r response) {
	t.Helper()
	for k, v := range map[string]string{
		"Content-Security-Policy":   "default-src 'self' 'unsafe-inline'",
		"Strict-Transport-Security": "max-age=3600; includeSubdomains",
		"X-Content-Type-Options":    "nosniff",
		"X-Frame-Options":           "SAMEORIGIN",
		"X-Xss-Protection":          "1; mode=block",
	} {
		if got := r.Header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if !hasValue(r.Header.Values("Vary"), "Origin") {
		t.Errorf("Vary = %v, want Origin among them", r.Header.Values("Vary"))
	}
}

func hasValue(values []string, want string) bool {
	for _, v := range values {
		if v == want {
			return true
		}
	}
	return false
}
