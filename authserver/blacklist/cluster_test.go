package blacklist_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hiringo/auth-operator/authserver/blacklist"
	"github.com/hiringo/auth-operator/authserver/redistest"
	"github.com/hiringo/auth-operator/authserver/sessions"
	"github.com/hiringo/auth-operator/authserver/tokentest"
	"github.com/hiringo/auth-operator/authserver/verifycache"
	"github.com/hiringo/auth-operator/internal/poll"
)

// TestStore_WorksOnARedisCluster runs every operation through a go-redis Cluster
// client against a real Redis Cluster, which refuses a command whose keys hash to
// different slots: each check and each script touches one user's keys only, all in
// that user's slot, and the revocation channel reaches a follower.
func TestStore_WorksOnARedisCluster(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{Cluster: true})
	client := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{srv.Addr}, ReadTimeout: 2 * time.Second})
	t.Cleanup(func() { client.Close() })
	s := blacklist.NewStore(client, blacklist.StoreOptions{Prefix: "cluster:"})
	t.Cleanup(s.Close)
	cache, err := verifycache.New(tokentest.StaticKeys{}, verifycache.Options{Size: 10})
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	followed := make(chan struct{})
	go func() {
		defer close(followed)
		s.Follow(ctx, sessions.Revocations{Cache: cache, Keys: ignoredKeys{}}, blacklist.FollowOptions{HealthInterval: 200 * time.Millisecond})
	}()
	t.Cleanup(func() {
		stop()
		<-followed
	})
	poll.UntilTrue(t, 5*time.Second, "the revocation subscription on the cluster", cache.Trusted)

	until := time.Now().Add(time.Hour)
	login := blacklist.Subject{UserID: "u-1", TokenID: "sig:a", SessionID: "s-1", Stamp: "st-1", IssuedAt: time.Now().Add(-time.Minute)}
	if listed, err := s.Check(ctx, login); err != nil || listed {
		t.Fatalf("Check before: %v, %v", listed, err)
	}
	if err := s.Rotate(ctx, login, until, until); err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	if err := s.Rotate(ctx, login, until, until); !errors.Is(err, blacklist.ErrReuse) {
		t.Fatalf("second Rotate: %v, want ErrReuse", err)
	}
	if listed, err := s.Check(ctx, login); err != nil || !listed {
		t.Fatalf("Check after: %v, %v", listed, err)
	}
	plain := blacklist.Tok("sig:b")
	if err := s.Revoke(ctx, plain, until); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	other := blacklist.Subject{UserID: "u-2", TokenID: "sig:c", SessionID: "s-2", Stamp: "st-2", IssuedAt: time.Now().Add(-time.Minute)}
	if _, err := s.CutOff(ctx, other, true, time.Now(), until); err != nil {
		t.Fatalf("CutOff: %v", err)
	}
	if listed, err := s.Check(ctx, other); err != nil || !listed {
		t.Fatalf("Check after the cutoff: %v, %v", listed, err)
	}
	if _, err := s.Cutoff(ctx, "u-2"); err != nil {
		t.Fatalf("Cutoff: %v", err)
	}
	if err := s.RevokeKeys(ctx, []string{"kid-1"}, until); err != nil {
		t.Fatalf("RevokeKeys: %v", err)
	}
	if kids, err := s.RevokedKeys(ctx); err != nil || len(kids) != 1 {
		t.Fatalf("RevokedKeys: %v, %v", kids, err)
	}
}
