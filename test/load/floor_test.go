package main

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/hiringo/auth-operator/authserver/token"
	"github.com/hiringo/auth-operator/authserver/tokentest"
)

func TestVerifyFloor_AcceptsOnlyTheActiveKeysSignature(t *testing.T) {
	set := tokentest.NewSet(t)
	h := verifyFloor(tokentest.Active(t, set).Public)
	for _, tc := range []struct {
		name, auth string
		want       int
	}{
		{"active key", "Bearer " + tokentest.Issue(t, set, time.Minute), http.StatusOK},
		{"foreign key", "Bearer " + tokentest.SeedForeignToken, http.StatusUnauthorized},
		{"no token", "", http.StatusUnauthorized},
	} {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, rec.Code, tc.want)
		}
	}
}

// TestIssueTokens_AreDistinctLogouts checks that the supply holds distinct tokens
// for the blacklist (distinct claims, not only distinct signatures).
func TestIssueTokens_AreDistinctLogouts(t *testing.T) {
	set := tokentest.NewSet(t)
	toks, err := issueTokens(set, "t", 50)
	if err != nil {
		t.Fatal(err)
	}
	v := token.NewVerifier(tokentest.Static(t, set), token.VerifierOptions{})
	seen := map[string]bool{}
	for _, tok := range toks {
		got, err := v.Verify(tok)
		if err != nil {
			t.Fatal(err)
		}
		if seen[got.BlacklistID] {
			t.Fatalf("two tokens of the supply are the same logout")
		}
		seen[got.BlacklistID] = true
	}
}
