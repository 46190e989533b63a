package main

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hiringo/auth-operator/internal/testutil/poll"
	"github.com/hiringo/auth-operator/internal/testutil/redistest"
)

// TestServe_StoreDataLossRefusesTokensIssuedBeforeIt runs the server with its verify
// cache, logs a token out and empties Redis (FLUSHALL), which forgets the logout:
// within the health interval the server finds its generation marker gone, and from
// then on the logged-out token and any other issued before are refused, cached or
// not, the loss is counted, and a token issued afterwards verifies.
func TestServe_StoreDataLossRefusesTokensIssuedBeforeIt(t *testing.T) {
	redis := redistest.Start(t, redistest.Options{})
	keys := filepath.Join(t.TempDir(), "keys")
	if _, err := run(t, context.Background(), "keys", "generate", "--dir", keys); err != nil {
		t.Fatal(err)
	}
	issue := func() string {
		t.Helper()
		tok, err := run(t, context.Background(), "token", "issue", "--keys-dir", keys, "--user-id", "u-1", "--ttl", "5m")
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(tok)
	}
	loggedOut, held := issue(), issue()
	addr, adminAddr, _ := startServe(t, "--keys-dir", keys, "--redis-addrs", redis.Addr)
	call := func(method, path, tok string) int {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+addr+path, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := call(http.MethodPost, "/auth/logout", loggedOut); code != http.StatusOK {
		t.Fatalf("logout: %d", code)
	}
	// The verify cache becomes trusted with its first canary; then held is cached.
	poll.UntilTrue(t, 5*time.Second, "a cached verification", func() bool {
		return call(http.MethodGet, "/auth/verify", held) == http.StatusOK && strings.Contains(metrics(t, adminAddr), `authserver_verify_cache_lookups_total{result="hit"} `) &&
			!strings.Contains(metrics(t, adminAddr), `authserver_verify_cache_lookups_total{result="hit"} 0`)
	})

	if _, err := redistest.Command(redis.Addr, "FLUSHALL"); err != nil {
		t.Fatal(err)
	}
	poll.UntilTrue(t, 5*time.Second, "the loss to be detected", func() bool {
		return strings.Contains(metrics(t, adminAddr), "authserver_blacklist_store_data_lost_total 1")
	})
	for name, tok := range map[string]string{"the logged-out token": loggedOut, "a cached token issued before": held} {
		if code := call(http.MethodGet, "/auth/verify", tok); code != http.StatusUnauthorized {
			t.Errorf("%s after the loss: verify %d, want 401", name, code)
		}
	}
	poll.UntilTrue(t, 5*time.Second, "a token issued after the detection to verify", func() bool {
		return call(http.MethodGet, "/auth/verify", issue()) == http.StatusOK
	})
}

func metrics(t *testing.T, adminAddr string) string {
	t.Helper()
	resp, err := http.Get("http://" + adminAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}
