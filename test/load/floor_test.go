package main

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

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

func TestIssueTokens_AreDistinct(t *testing.T) {
	toks, err := issueTokens(tokentest.NewSet(t), "t", 50)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, tok := range toks {
		if tok == "" || seen[tok] {
			t.Fatalf("empty or repeated token among %d", len(toks))
		}
		seen[tok] = true
	}
}
