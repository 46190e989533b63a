package blacklist_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hiringo/auth-operator/authserver/blacklist"
	"github.com/hiringo/auth-operator/authserver/sessions"
	"github.com/hiringo/auth-operator/authserver/verifycache"
	"github.com/hiringo/auth-operator/internal/testutil/poll"
	"github.com/hiringo/auth-operator/internal/testutil/redistest"
	"github.com/hiringo/auth-operator/internal/testutil/tokentest"
)

// TestStore_WorksOnARedisCluster runs every operation through the Cluster client,
// reached by ONE address as a managed service's configuration endpoint is (auto mode
// asks it and gets the Cluster client), against a real three-master Redis Cluster,
// which refuses a command whose keys hash to different slots and answers MOVED for a
// slot another master owns: each check and each script touches one user's keys only,
// all in that user's slot; users spread over every master; a revocation published on
// one server reaches the subscription of another (Cluster PUBLISH is broadcast).
func TestStore_WorksOnARedisCluster(t *testing.T) {
	cluster := redistest.StartCluster(t, 3)
	endpoint := blacklist.ClientConfig{Addrs: []string{cluster.Nodes[1].Addr}, Timeout: 2 * time.Second}
	ctx := context.Background()
	mode, err := blacklist.ResolveMode(ctx, endpoint)
	if err != nil || mode != blacklist.ModeCluster {
		t.Fatalf("ResolveMode of a Cluster endpoint: %q, %v; want cluster", mode, err)
	}
	endpoint.Mode = mode
	newStore := func() *blacklist.Store {
		client, err := blacklist.NewClient(endpoint)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { client.Close() })
		s := blacklist.NewStore(client, blacklist.StoreOptions{Prefix: "cluster:"})
		t.Cleanup(s.Close)
		return s
	}
	s, other := newStore(), newStore()
	cache, err := verifycache.New(tokentest.StaticKeys{}, verifycache.Options{Size: 10})
	if err != nil {
		t.Fatal(err)
	}
	heard := &recordingSink{Revocations: sessions.Revocations{Cache: cache, Keys: ignoredKeys{}}}
	fctx, stop := context.WithCancel(ctx)
	followed := make(chan struct{})
	go func() {
		defer close(followed)
		other.Follow(fctx, heard, blacklist.FollowOptions{HealthInterval: 200 * time.Millisecond})
	}()
	t.Cleanup(func() {
		stop()
		<-followed
	})
	poll.UntilTrue(t, 5*time.Second, "the revocation subscription on the cluster", cache.Trusted)

	until := time.Now().Add(time.Hour)
	var published []string
	for i := range 30 {
		tok := blacklist.Subject{UserID: fmt.Sprintf("user-%d", i), TokenID: fmt.Sprintf("sig:%d", i), IssuedAt: time.Now().Add(-time.Minute)}
		if err := s.Revoke(ctx, tok, blacklist.Until(until)); err != nil {
			t.Fatalf("Revoke of user %d: %v", i, err)
		}
		published = append(published, tok.TokenID)
		if listed, err := other.Check(ctx, tok); err != nil || !listed {
			t.Fatalf("Check of user %d on the other server: %v, %v", i, listed, err)
		}
	}
	for _, n := range cluster.Nodes {
		if size, err := redistest.Command(n.Addr, "DBSIZE"); err != nil || size == "0" {
			t.Fatalf("master %s holds %s keys (%v): the users did not spread over the cluster", n.Addr, size, err)
		}
	}
	if use, err := s.ReadMemory(ctx); err != nil || use.Keys != 30 || use.Used == 0 {
		t.Fatalf("ReadMemory on the cluster: %+v, %v; want the 30 keys of every master and a used_memory", use, err)
	}
	poll.UntilTrue(t, 5*time.Second, "every revocation on the other server's subscription", func() bool { return heard.has(published...) })

	policy := blacklist.SessionPolicy{RecordLifetime: time.Hour, SingleSession: true, MarkerLifetime: time.Hour}
	login := blacklist.Subject{UserID: "u-1", TokenID: "sig:a", SessionID: "s-1", Stamp: "st-1"}
	if login.IssuedAt, err = s.Issue(ctx, login, policy); err != nil {
		t.Fatalf("Issue: %v", err)
	}
	if listed, err := s.Check(ctx, login); err != nil || listed {
		t.Fatalf("Check before: %v, %v", listed, err)
	}
	if _, err := s.Rotate(ctx, login, "st-2", policy, blacklist.Until(until)); err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	if _, err := s.Rotate(ctx, login, "st-2", policy, blacklist.Until(until)); !errors.Is(err, blacklist.ErrReuse) {
		t.Fatalf("second Rotate: %v, want ErrReuse", err)
	}
	if listed, err := other.Check(ctx, login); err != nil || !listed {
		t.Fatalf("Check after: %v, %v", listed, err)
	}
	sub := blacklist.Subject{UserID: "u-2", TokenID: "sig:c", SessionID: "s-2", Stamp: "st-2", IssuedAt: time.Now().Add(-time.Minute)}
	if _, err := s.CutOff(ctx, sub, true, time.Hour); err != nil {
		t.Fatalf("CutOff: %v", err)
	}
	if listed, err := other.Check(ctx, sub); err != nil || !listed {
		t.Fatalf("Check after the cutoff: %v, %v", listed, err)
	}
	if err := s.RevokeKeys(ctx, []string{"kid-1"}, until); err != nil {
		t.Fatalf("RevokeKeys: %v", err)
	}
	if kids, err := other.RevokedKeys(ctx); err != nil || len(kids) != 1 {
		t.Fatalf("RevokedKeys: %v, %v", kids, err)
	}
	poll.UntilTrue(t, 5*time.Second, "the key revocation on the other server's subscription", func() bool { return heard.hasKey("kid-1") })

	// What auto mode avoids: a single-node client of the same endpoint fails (MOVED)
	// for the users whose slot another master owns. It fails closed, never open.
	single, err := blacklist.NewClient(blacklist.ClientConfig{Mode: blacklist.ModeStandalone, Addrs: endpoint.Addrs})
	if err != nil {
		t.Fatal(err)
	}
	defer single.Close()
	lone := blacklist.NewStore(single, blacklist.StoreOptions{Prefix: "cluster:"})
	defer lone.Close()
	failed := 0
	for i := range 30 {
		_, err := lone.Check(ctx, blacklist.Subject{UserID: fmt.Sprintf("user-%d", i), TokenID: fmt.Sprintf("sig:%d", i)})
		if errors.Is(err, blacklist.ErrUnavailable) {
			failed++
		}
	}
	if failed == 0 {
		t.Fatal("a single-node client of one cluster master answered for every user: the test's users do not spread")
	}
}

// recordingSink records what Follow hands it.
type recordingSink struct {
	sessions.Revocations
	mu      sync.Mutex
	revoked []string
	kids    []string
}

func (r *recordingSink) Revoke(id string) {
	r.mu.Lock()
	r.revoked = append(r.revoked, id)
	r.mu.Unlock()
	r.Revocations.Revoke(id)
}

func (r *recordingSink) RevokeKeys(kids ...string) {
	r.mu.Lock()
	r.kids = append(r.kids, kids...)
	r.mu.Unlock()
}

func (r *recordingSink) has(ids ...string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, id := range ids {
		if !slices.Contains(r.revoked, id) {
			return false
		}
	}
	return true
}

func (r *recordingSink) hasKey(kid string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Contains(r.kids, kid)
}
