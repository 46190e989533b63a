package main

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/hiringo/auth-operator/authserver/token"
	"github.com/hiringo/auth-operator/internal/testutil/tokentest"
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

// The plain floor answers exactly the recorded response.
func TestPlainFloor_ReplaysTheRecordedResponse(t *testing.T) {
	rec := recorded{Status: http.StatusOK, Header: map[string][]string{"X-Auth-User-Id": {"u-1"}, "Content-Type": {"application/json"}}, Body: []byte(`{"success":true}`)}
	w := httptest.NewRecorder()
	plainFloor(rec).ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
	if w.Code != http.StatusOK || w.Body.String() != `{"success":true}` || w.Header().Get("X-Auth-User-Id") != "u-1" {
		t.Errorf("got %d %v %s", w.Code, w.Header(), w.Body)
	}
}

// The sign floor signs and answers 200.
func TestSignFloor_Answers200(t *testing.T) {
	w := httptest.NewRecorder()
	signFloor(tokentest.Active(t, tokentest.NewSet(t)).Private).ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/", nil))
	if w.Code != http.StatusOK {
		t.Errorf("status %d", w.Code)
	}
}

func TestParseWrk_ReadsTheScriptsResultLine(t *testing.T) {
	r, err := parseWrk("Running 4s test\nwrk-result 20000 4000000 10 0 1500 9000 1\n")
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests != 20000 || r.Throughput != 5000 || r.Codes["other"] != 10 || r.Latencies.P99 != 9*time.Millisecond || r.Wraps != 1 {
		t.Errorf("parsed %+v", r)
	}
	if _, err := parseWrk("no result"); err == nil {
		t.Error("output without a result line parsed")
	}
}

func TestGoBenchLine_ParsesNsAndAllocs(t *testing.T) {
	m := benchLine.FindStringSubmatch("BenchmarkVerifyCachedServer-2   	  512071	      2069 ns/op	      48 B/op	       1 allocs/op")
	if m == nil || m[1] != "VerifyCachedServer" || m[2] != "2069" || m[3] != "1" {
		t.Errorf("matched %q", m)
	}
}
