package verifycache_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hiringo/auth-operator/authserver/redistest"
	"github.com/hiringo/auth-operator/authserver/tokentest"
	"github.com/hiringo/auth-operator/authserver/verifycache"
)

// TestFollow_ReturnsWhenItsContextEnds follows a healthy subscription, then cancels:
// Follow must return (a shutdown waits for it) and leave the cache untrusted.
func TestFollow_ReturnsWhenItsContextEnds(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	client := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer client.Close()
	c, err := verifycache.New(tokentest.StaticKeys{}, verifycache.Options{Size: 10})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Follow(ctx, client, "follow-test", verifycache.FollowOptions{HealthInterval: 50 * time.Millisecond})
	}()
	deadline := time.Now().Add(5 * time.Second)
	for !c.Trusted() {
		if time.Now().After(deadline) {
			t.Fatal("subscription not confirmed within 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Let a few health pings go by, so Follow is in its steady state.
	time.Sleep(200 * time.Millisecond)
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Follow still runs 5s after its context ended")
	}
	if c.Trusted() {
		t.Error("cache still trusted after Follow returned")
	}
}
