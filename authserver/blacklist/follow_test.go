package blacklist_test

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/hiringo/auth-operator/authserver/blacklist"
	"github.com/hiringo/auth-operator/authserver/sessions"
	"github.com/hiringo/auth-operator/authserver/verifycache"
	"github.com/hiringo/auth-operator/internal/testutil/poll"
	"github.com/hiringo/auth-operator/internal/testutil/redistest"
	"github.com/hiringo/auth-operator/internal/testutil/tokentest"
)

// TestFollow_ReturnsWhenItsContextEnds follows a healthy subscription, then cancels:
// Follow must return (a shutdown waits for it) and leave the cache untrusted.
func TestFollow_ReturnsWhenItsContextEnds(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	s := followStore(t, srv)
	c, err := verifycache.New(tokentest.StaticKeys{}, verifycache.Options{Size: 10})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Follow(ctx, sessions.Revocations{Cache: c, Keys: ignoredKeys{}}, blacklist.FollowOptions{HealthInterval: 50 * time.Millisecond})
	}()
	poll.UntilTrue(t, 5*time.Second, "the subscription", c.Trusted)
	// Let a few canaries go by, so Follow is in its steady state.
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

// TestFollow_SilentRedisIsDistrustedThenResynced freezes Redis (SIGSTOP: connections
// stay open but nothing answers, as in a network partition without a reset). The
// canary that does not arrive must distrust the cache within three health intervals
// plus slack; once Redis answers again the cache resyncs and is trusted.
func TestFollow_SilentRedisIsDistrustedThenResynced(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	s := followStore(t, srv)
	c, err := verifycache.New(tokentest.StaticKeys{}, verifycache.Options{Size: 10})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	defer func() {
		cancel()
		<-done
	}()
	go func() {
		defer close(done)
		s.Follow(ctx, sessions.Revocations{Cache: c, Keys: ignoredKeys{}}, blacklist.FollowOptions{HealthInterval: 100 * time.Millisecond, RetryInterval: 50 * time.Millisecond})
	}()
	poll.UntilTrue(t, 5*time.Second, "the first subscription", c.Trusted)
	pid := srv.Pid()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			_ = syscall.Kill(pid, syscall.SIGCONT)
		}
	}
	defer resume()
	poll.UntilTrue(t, 2*time.Second, "the cache to be distrusted while Redis is silent", func() bool { return !c.Trusted() })
	resume()
	poll.UntilTrue(t, 10*time.Second, "the cache to resync once Redis answers", c.Trusted)
}

// followStore is a store on srv whose client gives up dialing quickly, so a frozen
// Redis is noticed within the tests' bounds.
func followStore(t *testing.T, srv *redistest.Server) *blacklist.Store {
	t.Helper()
	client, err := blacklist.NewClient(blacklist.ClientConfig{Addrs: []string{srv.Addr}, Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	s := blacklist.NewStore(client, blacklist.StoreOptions{Prefix: "follow:"})
	t.Cleanup(s.Close)
	return s
}

// ignoredKeys drops key revocations: these tests follow the cache only.
type ignoredKeys struct{}

func (ignoredKeys) RevokeKeys(...string) {}
