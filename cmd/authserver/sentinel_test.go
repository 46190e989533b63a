package main

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hiringo/auth-operator/internal/testutil/redistest"
)

// TestServe_ThroughSentinelsAsTheOperatorConfiguresThem passes the Sentinel settings
// the operator gives a highAvailability AuthService, as environment variables:
// Sentinel mode, the Sentinels' address list, the master name, the Sentinels'
// password file and one replica's acknowledgement. A logout is answered 200 and the
// token is then refused.
func TestServe_ThroughSentinelsAsTheOperatorConfiguresThem(t *testing.T) {
	g := redistest.StartGroup(t, redistest.GroupOptions{Replicas: 1, SentinelPassword: "s3ntinel"})
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	if _, err := run(t, context.Background(), "keys", "generate", "--dir", keys); err != nil {
		t.Fatal(err)
	}
	tok, err := run(t, context.Background(), "token", "issue", "--keys-dir", keys, "--user-id", "u-1", "--ttl", "5m")
	if err != nil {
		t.Fatal(err)
	}
	pw := filepath.Join(dir, "sentinel-password")
	if err := os.WriteFile(pw, []byte("s3ntinel\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{
		"AUTHSERVER_REDIS_MODE":                   "sentinel",
		"AUTHSERVER_REDIS_ADDRS":                  strings.Join(g.SentinelAddrs(), ","),
		"AUTHSERVER_REDIS_MASTER_NAME":            g.MasterName,
		"AUTHSERVER_REDIS_SENTINEL_PASSWORD_FILE": pw,
		"AUTHSERVER_REDIS_MIN_REPLICAS_ACKED":     "1",
	} {
		t.Setenv(k, v)
	}
	addr, _, _ := startServe(t, "--keys-dir", keys)
	for _, step := range []struct {
		method, path string
		want         int
	}{
		{http.MethodGet, "/auth/verify", http.StatusOK},
		{http.MethodPost, "/auth/logout", http.StatusOK},
		{http.MethodGet, "/auth/verify", http.StatusUnauthorized},
	} {
		method, path, want := step.method, step.path, step.want
		req, _ := http.NewRequest(method, "http://"+addr+path, nil)
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(tok))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("%s through Sentinel: %d, want %d", path, resp.StatusCode, want)
		}
	}
}
