package httpapi_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/hiringo/auth-operator/internal/testutil/tokentest"
)

// TestLogout_RejectsBadInput sends the issue's list of bad tokens to logout: each is a
// 401 with its cause, and none is blacklisted.
func TestLogout_RejectsBadInput(t *testing.T) {
	h := newHarness(t, nil, onRedis)
	active := tokentest.Active(t, h.set)
	valid := tokentest.Claims(15 * time.Minute)
	der, _ := x509.MarshalPKIXPublicKey(active.Public)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	sign := func(m jwt.SigningMethod, key any, c jwt.Claims) string {
		s, err := jwt.NewWithClaims(m, c).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	now := time.Now()
	expired := tokentest.Claims(time.Minute)
	expired.ExpiresAt = jwt.NewNumericDate(now.Add(-time.Hour))
	future := tokentest.Claims(time.Hour)
	future.NotBefore = jwt.NewNumericDate(now.Add(30 * time.Minute))
	noExp := tokentest.Claims(time.Minute)
	noExp.ExpiresAt = nil
	good := tokentest.Issue(t, h.set, 15*time.Minute)

	cases := []struct{ name, tok, cause string }{
		{"alg none", tokentest.Unsigned(map[string]string{"alg": "none", "typ": "JWT"}, valid, ""), "signing method none is invalid"},
		{"HS256 with the public key as secret", sign(jwt.SigningMethodHS256, pubPEM, valid), "signing method HS256 is invalid"},
		{"RS256", sign(jwt.SigningMethodRS256, rsaKey, valid), "signing method RS256 is invalid"},
		{"foreign ES256 key", tokentest.Sign(t, tokentest.ForeignKey(t), "", valid), "crypto/ecdsa: verification error"},
		{"expired", tokentest.Sign(t, active.Private, active.ID, expired), "token is expired"},
		{"nbf in the future", tokentest.Sign(t, active.Private, active.ID, future), "token is not valid yet"},
		{"missing exp", tokentest.Sign(t, active.Private, active.ID, noExp), "exp claim is required"},
		{"wrong segment count", "a.b", "token contains an invalid number of segments"},
		{"thousands of dots", strings.Repeat(".", 8000), "token contains an invalid number of segments"},
		{"over the size limit", good + strings.Repeat("A", 9000), "token is longer than 8192 bytes"},
		{"bad base64", "e30.%%%.sig", "could not base64 decode claim: illegal base64 data at input byte 0"},
		{"kid that is a path", tokentest.Sign(t, active.Private, "../../keys/"+active.ID, valid), "unknown kid"},
		{"unknown kid", tokentest.Sign(t, active.Private, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", valid), "unknown kid"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h.do(http.MethodPost, "/auth/logout", tc.tok).expect(t, http.StatusUnauthorized, errorBody("invalid or expired jwt, internal="+tc.cause))
		})
	}
	if _, keys := h.blacklistKeys(t); len(keys) != 0 {
		t.Fatalf("bad tokens wrote %v to the blacklist", keys)
	}
	h.do(http.MethodPost, "/auth/logout", good).expect(t, http.StatusOK, `{"success":true,"message":"Success","payload":{"id":"66312a78-1f9e-4d78-a9fb-231e84967f60"}}`)
}

// TestLogout_ReencodedCopyCountsAsLoggedOut logs a token out, then presents copies
// re-encoded so they are different strings that still verify.
func TestLogout_ReencodedCopyCountsAsLoggedOut(t *testing.T) {
	h := newHarness(t, nil)
	tok := tokentest.Issue(t, h.set, 15*time.Minute)
	h.do(http.MethodPost, "/auth/logout", tok).expect(t, http.StatusOK, `{"success":true,"message":"Success","payload":{"id":"66312a78-1f9e-4d78-a9fb-231e84967f60"}}`)
	for name, copy := range map[string]string{
		"high-S":     tokentest.HighS(t, tok),
		"slack bits": tokentest.SlackBits(t, tok),
		"both":       tokentest.SlackBits(t, tokentest.HighS(t, tok)),
	} {
		t.Run(name, func(t *testing.T) {
			h.do(http.MethodPost, "/auth/logout", copy).expect(t, http.StatusUnauthorized, errorBody("token is blacklisted"))
			h.do(http.MethodGet, "/auth/verify", copy).expect(t, http.StatusUnauthorized, errorBody("token is blacklisted"))
		})
	}
}

// TestServer_RejectsOversizedBodies checks the body size limit (the header limit is
// the HTTP server's, tested in cmd/authserver).
func TestServer_RejectsOversizedBodies(t *testing.T) {
	h := newHarness(t, nil)
	req, err := http.NewRequest(http.MethodPost, h.srv.URL+"/auth/logout", strings.NewReader(strings.Repeat("x", 128<<10)))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("128 KiB body: status %d, want 413", resp.StatusCode)
	}
}
