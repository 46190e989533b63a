package httpapi_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hiringo/auth-operator/internal/testutil/tokentest"
)

func TestVerify_ValidTokenPassesWithUserHeaders(t *testing.T) {
	h := newHarness(t, nil)
	tok := tokentest.Issue(t, h.set, 15*time.Minute)
	for _, method := range []string{http.MethodGet, http.MethodHead, http.MethodPost} {
		t.Run(method, func(t *testing.T) {
			r := h.do(method, "/auth/verify", tok)
			if r.StatusCode != http.StatusOK {
				t.Fatalf("status = %d, body %s", r.StatusCode, r.body)
			}
			for k, v := range map[string]string{
				"X-Auth-User-Id":    tokentest.SeedUser.ID,
				"X-Auth-User-Email": tokentest.SeedUser.Email,
				"X-Auth-Session-Id": tokentest.SeedUser.Auth.ID,
				"Cache-Control":     "no-store",
			} {
				if got := r.Header.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if method == http.MethodHead {
				if r.body != "" {
					t.Errorf("HEAD body = %q", r.body)
				}
				return
			}
			if !strings.HasPrefix(r.body, `{"success":true,"message":"Success","payload":{"id":"66312a78-1f9e-4d78-a9fb-231e84967f60","email":"xxxx@gmail.com","session_id":"95a51a3f-56fa-4889-bf80-3c57d054b1c2","exp":`) {
				t.Errorf("body = %s", r.body)
			}
		})
	}
}

func TestVerify_EveryRejectionIs401WithBearerChallenge(t *testing.T) {
	h := newHarness(t, nil, compat)
	active := tokentest.Active(t, h.set)
	expired := tokentest.Claims(time.Minute)
	expired.ExpiresAt.Time = time.Now().Add(-time.Hour)
	loggedOut := tokentest.Issue(t, h.set, time.Minute)
	h.do(http.MethodPost, "/auth/logout", loggedOut).expect(t, http.StatusOK, `{"success":true,"message":"Success","payload":{"id":"66312a78-1f9e-4d78-a9fb-231e84967f60"}}`)

	cases := []struct {
		name, bearer string
		headers      []string
		msg          string
		challenge    string
	}{
		{"no header", "", nil, "missing or malformed jwt", "Bearer"},
		{"wrong scheme", "", []string{"Authorization", "Basic abc"}, "missing or malformed jwt", "Bearer"},
		{"foreign key", tokentest.SeedForeignToken, nil, "invalid or expired jwt, internal=crypto/ecdsa: verification error", `Bearer error="invalid_token"`},
		{"expired", tokentest.Sign(t, active.Private, active.ID, expired), nil, "invalid or expired jwt, internal=token is expired", `Bearer error="invalid_token"`},
		{"garbage", "x.y.z", nil, "invalid or expired jwt, internal=could not base64 decode header: illegal base64 data at input byte 0", `Bearer error="invalid_token"`},
		{"blacklisted", loggedOut, nil, "token is blacklisted", `Bearer error="invalid_token"`},
		{"blacklisted, high-S copy", tokentest.HighS(t, loggedOut), nil, "token is blacklisted", `Bearer error="invalid_token"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, method := range []string{http.MethodGet, http.MethodPost} {
				r := h.do(method, "/auth/verify", tc.bearer, tc.headers...)
				r.expect(t, http.StatusUnauthorized, errorBody(tc.msg))
				if got := r.Header.Get("WWW-Authenticate"); got != tc.challenge {
					t.Errorf("WWW-Authenticate = %q, want %q", got, tc.challenge)
				}
				if got := r.Header.Get("Cache-Control"); got != "no-store" {
					t.Errorf("Cache-Control = %q", got)
				}
				if r.Header.Get("X-Auth-User-Id") != "" {
					t.Error("rejected request carries X-Auth-User-Id")
				}
			}
		})
	}
}

// TestLogout_OtherMethodsAre405 keeps logout to POST; verify takes every method
// (TestVerify_AsProxiesSendIt).
func TestLogout_OtherMethodsAre405(t *testing.T) {
	h := newHarness(t, nil)
	r := h.do(http.MethodGet, "/auth/logout", "")
	r.expect(t, http.StatusMethodNotAllowed, errorBody("Method Not Allowed"))
	if got := r.Header.Get("Allow"); got != "POST" {
		t.Errorf("Allow = %q", got)
	}
}
