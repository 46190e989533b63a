package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestE2E_LogoutThroughTheRunningServerThenBlacklisted(t *testing.T) {
	t.Parallel()
	key := createReady(t, "logout", nil)
	url, err := stack.ServerURL(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	keysDir, err := stack.KeysDir(key)
	if err != nil {
		t.Fatal(err)
	}
	// Minted exactly as `make dev` tells users to: the auth server's own command on the
	// keys directory the pods see.
	tok, err := stack.IssueToken(context.Background(), keysDir, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	active := getAuthService(t, key).Status.ActiveKeyID
	if kid := kidOf(tok); kid == "" || kid != active {
		t.Fatalf("token kid %q, want the active key %q of the status", kid, active)
	}

	r, err := call(http.MethodPost, url+"/auth/logout", tok)
	if err != nil || r.code != http.StatusOK || !strings.HasPrefix(r.body, `{"success":true,"message":"Success","payload":{"id":"`) {
		t.Fatalf("first logout: %d %s %v", r.code, r.body, err)
	}
	r, err = call(http.MethodPost, url+"/auth/logout", tok)
	if err != nil || r.code != http.StatusUnauthorized || r.body != `{"success":false,"message":"token is blacklisted","payload":null}` {
		t.Fatalf("second logout: %d %s %v", r.code, r.body, err)
	}
	r, err = call(http.MethodGet, url+"/auth/verify", tok)
	if err != nil || r.code != http.StatusUnauthorized || !strings.Contains(r.body, "token is blacklisted") {
		t.Fatalf("verify of a logged-out token: %d %s %v", r.code, r.body, err)
	}
}

// TestE2E_LoggedOutOnOneReplicaIsRejectedOnTheOther logs tokens out on one replica and
// checks them on the other at once. Each token is first verified on both replicas, so a
// replica that remembers verifications must forget this one before it answers again.
func TestE2E_LoggedOutOnOneReplicaIsRejectedOnTheOther(t *testing.T) {
	t.Parallel()
	key := createReady(t, "replicas", nil)
	pods := stack.ServerPods(key)
	if len(pods) != 2 {
		t.Fatalf("want the default 2 auth-server replicas ready, got %+v", pods)
	}
	m := minter{keysDir: pods[0].KeysDir}
	const rounds = 100
	var stale []string
	for i := range rounds {
		a, b := pods[i%2], pods[(i+1)%2]
		tok, _, _, err := m.mint(5 * time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pods {
			if r, err := call(http.MethodGet, p.URL+"/auth/verify", tok); err != nil || r.code != http.StatusOK {
				t.Fatalf("round %d: verify on %s before logout: %d %s %v", i, p.Name, r.code, r.body, err)
			}
		}
		if r, err := call(http.MethodPost, a.URL+"/auth/logout", tok); err != nil || r.code != http.StatusOK {
			t.Fatalf("round %d: logout on %s: %d %s %v", i, a.Name, r.code, r.body, err)
		}
		if r, err := call(http.MethodGet, b.URL+"/auth/verify", tok); err != nil || r.code != http.StatusUnauthorized || !strings.Contains(r.body, "token is blacklisted") {
			stale = append(stale, fmt.Sprintf("round %d: verify on %s right after logout on %s: %d %s %v", i, b.Name, a.Name, r.code, r.body, err))
		}
		if r, err := call(http.MethodPost, b.URL+"/auth/logout", tok); err != nil || r.code != http.StatusUnauthorized || !strings.Contains(r.body, "token is blacklisted") {
			t.Fatalf("round %d: logout on %s after logout on %s: %d %s %v", i, b.Name, a.Name, r.code, r.body, err)
		}
	}
	if len(stale) > 0 {
		t.Fatalf("%d of %d tokens logged out on one replica were still accepted by the other; first: %s", len(stale), rounds, stale[0])
	}
}
