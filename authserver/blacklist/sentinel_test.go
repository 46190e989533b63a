package blacklist_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hiringo/auth-operator/authserver/blacklist"
	"github.com/hiringo/auth-operator/internal/testutil/poll"
	"github.com/hiringo/auth-operator/internal/testutil/redistest"
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
	if err := s.Revoke(ctx, blacklist.Tok("sig:s1"), blacklist.Until(time.Now().Add(time.Minute))); err != nil {
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

// TestGeneration_PrimaryRestartedEmptyIsDetected: the primary of a replication group
// does not persist and is restarted at once (faster than Sentinel's down-after), so it
// comes back empty as the primary and its replicas resynchronise to nothing: every
// logout is gone. The store's generation check finds it and refuses the logged-out
// token again.
func TestGeneration_PrimaryRestartedEmptyIsDetected(t *testing.T) {
	g := redistest.StartGroup(t, redistest.GroupOptions{Replicas: 1})
	client, err := blacklist.NewClient(blacklist.ClientConfig{Mode: blacklist.ModeSentinel, Addrs: g.SentinelAddrs(), MasterName: g.MasterName, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	s := blacklist.NewStore(client, blacklist.StoreOptions{Prefix: "restart:", ReplicaAcks: blacklist.ReplicaAcks{Min: 1, Timeout: time.Second}})
	t.Cleanup(s.Close)
	ctx := context.Background()
	if _, err := s.CheckGeneration(ctx); err != nil {
		t.Fatal(err)
	}
	loggedOut := blacklist.Subject{UserID: "u-1", TokenID: "sig:out", IssuedAt: time.Now().Add(-time.Minute)}
	if err := s.Revoke(ctx, loggedOut, blacklist.Until(time.Now().Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	primary := g.Nodes[0]
	primary.Kill()
	if err := primary.Restart(); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, "the restarted primary to answer without the logout", func() error {
		listed, err := s.Check(ctx, loggedOut)
		if err == nil && listed {
			return errors.New("the logout survived the restart: the test shows nothing")
		}
		return err
	})
	var lost blacklist.GenerationEvent
	poll.Until(t, 10*time.Second, "the generation check to find the store emptied", func() error {
		ev, err := s.CheckGeneration(ctx)
		if err != nil {
			return err
		}
		if !ev.Lost {
			return errors.New("no loss found yet")
		}
		lost = ev
		return nil
	})
	if listed, err := s.Check(ctx, loggedOut); err != nil || !listed {
		t.Fatalf("the logged-out token after the loss (%+v): listed %v, %v; want refused", lost, listed, err)
	}
}
