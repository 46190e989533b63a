package blacklist_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hiringo/auth-operator/authserver/blacklist"
	"github.com/hiringo/auth-operator/authserver/redistest"
)

// TestStore_ThroughPasswordProtectedSentinels reaches the primary through Sentinels
// that require their own password, given as a file (the operator mounts it): the
// store writes, its write is acknowledged by a replica, and reads see it.
func TestStore_ThroughPasswordProtectedSentinels(t *testing.T) {
	g := redistest.StartGroup(t, redistest.GroupOptions{Replicas: 1, SentinelPassword: "sentinel-secret"})
	pw := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(pw, []byte("sentinel-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := blacklist.ClientConfig{Mode: blacklist.ModeSentinel, Addrs: g.SentinelAddrs(), MasterName: g.MasterName, SentinelPasswordFile: pw, Timeout: 2 * time.Second}
	client, err := blacklist.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	s := blacklist.NewStore(client, blacklist.StoreOptions{Prefix: "sentinel:", ReplicaAcks: blacklist.ReplicaAcks{Min: 1, Timeout: time.Second}})
	t.Cleanup(s.Close)
	ctx := context.Background()
	if err := s.Revoke(ctx, blacklist.Tok("sig:s1"), time.Now().Add(time.Minute)); err != nil {
		t.Fatalf("Revoke through Sentinel: %v", err)
	}
	if listed, err := s.Check(ctx, blacklist.Tok("sig:s1")); err != nil || !listed {
		t.Fatalf("Check through Sentinel: %v, %v", listed, err)
	}

	cfg.SentinelPasswordFile = ""
	bad, err := blacklist.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	if err := bad.Ping(ctx).Err(); err == nil {
		t.Fatal("a client without the Sentinel password reached the primary")
	}
}
