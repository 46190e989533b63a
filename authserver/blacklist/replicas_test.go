package blacklist_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hiringo/auth-operator/authserver/blacklist"
	"github.com/hiringo/auth-operator/internal/testutil/poll"
	"github.com/hiringo/auth-operator/internal/testutil/redistest"
)

// startReplicated runs a primary and one replica of it, and returns once the replica
// acknowledges a write: from then on the primary streams writes to it.
func startReplicated(t *testing.T) (primary, replica *redistest.Server) {
	t.Helper()
	primary = redistest.Start(t, redistest.Options{})
	replica = redistest.Start(t, redistest.Options{ReplicaOf: primary.Addr})
	// One connection, so that WAIT covers the SET before it.
	pc := redis.NewClient(&redis.Options{Addr: primary.Addr, PoolSize: 1, ReadTimeout: 5 * time.Second})
	defer pc.Close()
	ctx := context.Background()
	if err := pc.Set(ctx, "probe", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := pc.Wait(ctx, 1, 4*time.Second).Result(); err != nil || n != 1 {
		t.Fatalf("replica did not acknowledge a write within 4s: %d, %v", n, err)
	}
	return primary, replica
}

// newAckingStore waits up to a second for acks: a replica on a loaded 2-core machine
// can take longer than a few hundred milliseconds to answer the primary's GETACK.
func newAckingStore(t *testing.T, addr string, acks int) *blacklist.Store {
	t.Helper()
	client, err := blacklist.NewClient(blacklist.ClientConfig{Addrs: []string{addr}, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	s := blacklist.NewStore(client, blacklist.StoreOptions{
		Prefix:      "acks:",
		ReplicaAcks: blacklist.ReplicaAcks{Min: acks, Timeout: time.Second},
	})
	t.Cleanup(s.Close)
	return s
}

// TestAdd_ReplicaAcknowledgedIsOnTheReplica: with one replica required, a successful
// Add is already readable on the replica when it returns.
func TestAdd_ReplicaAcknowledgedIsOnTheReplica(t *testing.T) {
	primary, replica := startReplicated(t)
	s := newAckingStore(t, primary.Addr, 1)
	ctx := context.Background()
	rc := redis.NewClient(&redis.Options{Addr: replica.Addr})
	defer rc.Close()
	for _, id := range []string{"sig:r1", "sig:r2", "sig:r3"} {
		if err := s.Revoke(ctx, blacklist.Tok(id), blacklist.Until(time.Now().Add(time.Minute))); err != nil {
			t.Fatalf("Add(%s): %v", id, err)
		}
		n, err := rc.Exists(ctx, s.KeyOf(blacklist.Tok(id))).Result()
		if err != nil || n != 1 {
			t.Fatalf("replica has %s: %d, %v; want it there when Add returned", id, n, err)
		}
	}
	if err := s.Revoke(ctx, blacklist.Tok("sig:r1"), blacklist.Until(time.Now().Add(time.Minute))); !errors.Is(err, blacklist.ErrRevoked) {
		t.Fatalf("repeated Add: %v, want ErrRevoked", err)
	}
}

// TestAdd_TooFewReplicasIsUnavailable: when fewer replicas than required acknowledge
// (more required than exist, or the replica is gone), Add fails as unavailable, so
// logout answers 503 instead of a 200 a failover could lose.
func TestAdd_TooFewReplicasIsUnavailable(t *testing.T) {
	primary, replica := startReplicated(t)
	ctx := context.Background()
	two := newAckingStore(t, primary.Addr, 2)
	err := two.Revoke(ctx, blacklist.Tok("sig:two"), blacklist.Until(time.Now().Add(time.Minute)))
	if !errors.Is(err, blacklist.ErrUnavailable) || !errors.Is(err, blacklist.ErrReplicasBehind) {
		t.Fatalf("Add needing 2 of 1 replicas: err = %v, want ErrUnavailable and ErrReplicasBehind", err)
	}
	one := newAckingStore(t, primary.Addr, 1)
	if err := one.Revoke(ctx, blacklist.Tok("sig:before"), blacklist.Until(time.Now().Add(time.Minute))); err != nil {
		t.Fatalf("Add with the replica up: %v", err)
	}
	replica.Kill()
	err = one.Revoke(ctx, blacklist.Tok("sig:after"), blacklist.Until(time.Now().Add(time.Minute)))
	if !errors.Is(err, blacklist.ErrUnavailable) || !errors.Is(err, blacklist.ErrReplicasBehind) {
		t.Fatalf("Add with the replica killed: err = %v, want ErrUnavailable and ErrReplicasBehind", err)
	}
	if listed, err := one.Check(ctx, blacklist.Tok("sig:before")); err != nil || !listed {
		t.Fatalf("Contains with the replica killed: %v, %v; reads need no replica", listed, err)
	}
}

// TestCheck_NeverWaitsForReplicaAcknowledgement freezes the only replica, so every
// write's WAIT runs to its timeout, and keeps both write round trips busy in it: a
// read issued meanwhile answers before either write does.
func TestCheck_NeverWaitsForReplicaAcknowledgement(t *testing.T) {
	primary, replica := startReplicated(t)
	client, err := blacklist.NewClient(blacklist.ClientConfig{Addrs: []string{primary.Addr}, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	s := blacklist.NewStore(client, blacklist.StoreOptions{
		Prefix: "lag:", ReplicaAcks: blacklist.ReplicaAcks{Min: 1, Timeout: 1500 * time.Millisecond},
	})
	t.Cleanup(s.Close)
	if err := syscall.Kill(replica.Pid(), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(replica.Pid(), syscall.SIGCONT) })
	admin := redis.NewClient(&redis.Options{Addr: primary.Addr})
	t.Cleanup(func() { admin.Close() })
	ctx := context.Background()
	writes := make(chan error, 2)
	for i := range 2 {
		go func() {
			writes <- s.Revoke(ctx, blacklist.Tok(fmt.Sprintf("sig:lag-%d", i)), blacklist.Until(time.Now().Add(time.Minute)))
		}()
		poll.UntilTrue(t, time.Second, fmt.Sprintf("%d writes waiting for the replica", i+1), func() bool {
			list, err := admin.ClientList(ctx).Result()
			return err == nil && strings.Count(list, "cmd=wait") >= i+1
		})
	}
	if _, err := s.Check(ctx, blacklist.Tok("sig:lag-0")); err != nil {
		t.Fatalf("Check while writes wait: %v", err)
	}
	select {
	case err := <-writes:
		t.Fatalf("a write answered (%v) before the read: the read waited for replica acknowledgement", err)
	default:
	}
	for range 2 {
		if err := <-writes; !errors.Is(err, blacklist.ErrReplicasBehind) {
			t.Fatalf("write with the replica frozen: %v, want ErrReplicasBehind", err)
		}
	}
}

// TestRevoke_AWriteThatStoredNothingNeedsNoReplica: replica acknowledgement applies to
// writes that stored something. With the replica gone, revoking an already revoked token
// still answers "already blacklisted" (a 401 on logout), not the 503 of a write that
// replicas did not acknowledge, since nothing it did could be lost by a failover.
func TestRevoke_AWriteThatStoredNothingNeedsNoReplica(t *testing.T) {
	primary, replica := startReplicated(t)
	s := newAckingStore(t, primary.Addr, 1)
	ctx := context.Background()
	until := time.Now().Add(time.Minute)
	if err := s.Revoke(ctx, blacklist.Tok("sig:once"), blacklist.Until(until)); err != nil {
		t.Fatalf("first Revoke with the replica up: %v", err)
	}
	replica.Kill()
	if err := s.Revoke(ctx, blacklist.Tok("sig:once"), blacklist.Until(until)); !errors.Is(err, blacklist.ErrRevoked) {
		t.Fatalf("repeated Revoke with the replica gone: %v, want ErrRevoked", err)
	}
	if err := s.Revoke(ctx, blacklist.Tok("sig:new"), blacklist.Until(until)); !errors.Is(err, blacklist.ErrReplicasBehind) {
		t.Fatalf("new Revoke with the replica gone: %v, want ErrReplicasBehind", err)
	}
}
