package httpapi_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/hiringo/auth-operator/authserver/token"
	"github.com/hiringo/auth-operator/internal/testutil/tokentest"
)

// signClaims signs claims with the active key of h's set, kid set.
func (h *harness) signClaims(t *testing.T, c jwt.Claims) string {
	t.Helper()
	k := tokentest.Active(t, h.set)
	return tokentest.Sign(t, k.Private, k.ID, c)
}

// TestLogout_RevokesEveryTokenOfTheStamp logs out one token of a login: every other
// token of the same stamp (another token, a re-encoded copy) is refused by verify and
// logout, on a replica with a warm cache too, while a token of the same session
// under another stamp and a token without a session are untouched.
func TestLogout_RevokesEveryTokenOfTheStamp(t *testing.T) {
	a := newHarness(t, nil, onRedis, withCache(100))
	b := newReplica(a, withCache(100))
	first := tokentest.Claims(15 * time.Minute)
	sameStamp := first
	sameStamp.ExpiresAt = jwt.NewNumericDate(first.ExpiresAt.Add(-time.Minute))
	tokA, tokB := a.signClaims(t, first), a.signClaims(t, sameStamp)
	other := a.signClaims(t, tokentest.Claims(15*time.Minute))
	for _, tok := range []string{tokA, tokB, tokentest.HighS(t, tokB), other} {
		b.do(http.MethodGet, "/auth/verify", tok)
		b.do(http.MethodGet, "/auth/verify", tok).expect(t, http.StatusOK, b.do(http.MethodGet, "/auth/verify", tok).body)
	}
	a.do(http.MethodPost, "/auth/logout", tokA).expect(t, http.StatusOK, loggedOutBody)
	for _, tok := range []string{tokA, tokB, tokentest.HighS(t, tokB), tokentest.SlackBits(t, tokB)} {
		pollStatus(t, b, "/auth/verify", tok, http.StatusUnauthorized)
		a.do(http.MethodGet, "/auth/verify", tok).expect(t, http.StatusUnauthorized, errorBody("token is blacklisted"))
		b.do(http.MethodPost, "/auth/logout", tok).expect(t, http.StatusUnauthorized, errorBody("token is blacklisted"))
	}
	if r := b.do(http.MethodGet, "/auth/verify", other); r.StatusCode != http.StatusOK {
		t.Fatalf("a token of another stamp after the logout: %d %s", r.StatusCode, r.body)
	}
}

// TestLogoutAll_RevokesEveryTokenOfTheUserIssuedBefore logs a user out everywhere:
// every token of the user issued up to then, whatever its session, is refused on
// every replica; another user's token and the user's later tokens are not.
func TestLogoutAll_RevokesEveryTokenOfTheUserIssuedBefore(t *testing.T) {
	a := newHarness(t, nil, onRedis, withCache(100))
	b := newReplica(a, withCache(100))
	phone := tokentest.Claims(15 * time.Minute)
	laptop := tokentest.Claims(15 * time.Minute)
	laptop.User.Auth.ID = "another-session"
	stranger := tokentest.Claims(15 * time.Minute)
	stranger.User.ID = "someone-else"
	toks := []string{a.signClaims(t, phone), a.signClaims(t, laptop)}
	strangerTok := a.signClaims(t, stranger)
	for _, tok := range append(toks, strangerTok) {
		b.do(http.MethodGet, "/auth/verify", tok)
		b.do(http.MethodGet, "/auth/verify", tok).expect(t, http.StatusOK, b.do(http.MethodGet, "/auth/verify", tok).body)
	}
	a.do(http.MethodPost, "/auth/logout/all", toks[0]).expect(t, http.StatusOK, loggedOutBody)
	for _, tok := range toks {
		pollStatus(t, b, "/auth/verify", tok, http.StatusUnauthorized)
		a.do(http.MethodPost, "/auth/logout", tok).expect(t, http.StatusUnauthorized, errorBody("token is blacklisted"))
	}
	a.do(http.MethodPost, "/auth/logout/all", toks[1]).expect(t, http.StatusUnauthorized, errorBody("token is blacklisted"))
	b.do(http.MethodGet, "/auth/verify", strangerTok).expect(t, http.StatusOK, b.do(http.MethodGet, "/auth/verify", strangerTok).body)
	later := tokentest.Claims(15 * time.Minute)
	later.IssuedAt = jwt.NewNumericDate(time.Now().Add(2 * time.Second))
	r := b.do(http.MethodGet, "/auth/verify", a.signClaims(t, later))
	if r.StatusCode != http.StatusOK {
		t.Fatalf("a token issued after the cutoff: %d %s", r.StatusCode, r.body)
	}
}

// TestVerifyAndLogout_RefuseRefreshTokensAndTokensWithoutUser: a refresh token (typ
// refresh+jwt) is never an access token, and a token naming no user is no identity.
func TestVerifyAndLogout_RefuseRefreshTokensAndTokensWithoutUser(t *testing.T) {
	h := newHarness(t, nil)
	k := tokentest.Active(t, h.set)
	refresh := jwt.NewWithClaims(jwt.SigningMethodES256, tokentest.Claims(15*time.Minute))
	refresh.Header["kid"], refresh.Header["typ"] = k.ID, token.TypeRefresh
	refreshTok, err := refresh.SignedString(k.Private)
	if err != nil {
		t.Fatal(err)
	}
	noUser := tokentest.Claims(15 * time.Minute)
	noUser.User.ID = ""
	for _, tc := range []struct{ name, tok, cause string }{
		{"refresh token", refreshTok, "token is a refresh token, not an access token"},
		{"no user", h.signClaims(t, noUser), "token names no user"},
		{"no user claim at all", h.signClaims(t, jwt.RegisteredClaims{ExpiresAt: noUser.ExpiresAt, IssuedAt: noUser.IssuedAt}), "token names no user"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := errorBody("invalid or expired jwt, internal=" + tc.cause)
			h.do(http.MethodGet, "/auth/verify", tc.tok).expect(t, http.StatusUnauthorized, want)
			h.do(http.MethodPost, "/auth/logout", tc.tok).expect(t, http.StatusUnauthorized, want)
			h.do(http.MethodPost, "/auth/logout/all", tc.tok).expect(t, http.StatusUnauthorized, want)
		})
	}
}

// pollStatus waits up to a second for path to answer status for tok on h.
func pollStatus(t *testing.T, h *harness, path, tok string, status int) {
	t.Helper()
	deadline := time.Now().Add(time.Second)
	for {
		r := h.do(http.MethodGet, path, tok)
		if r.StatusCode == status {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still answers %d %s after 1s, want %d", path, r.StatusCode, r.body, status)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
