package blacklist_test

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hiringo/auth-operator/authserver/blacklist"
	"github.com/hiringo/auth-operator/authserver/sessions"
	"github.com/hiringo/auth-operator/authserver/verifycache"
	"github.com/hiringo/auth-operator/internal/testutil/poll"
	"github.com/hiringo/auth-operator/internal/testutil/redistest"
	"github.com/hiringo/auth-operator/internal/testutil/tokentest"
)

// TestFollow_SubscriptionOnADemotedPrimaryIsDistrustedAndMoved fails the primary over
// while it stays alive, then demotes it to a replica of an unrelated node, as a
// partition would leave it: the subscription on it stays healthy (it answers pings)
// but receives nothing of what is now published on the new primary. The canary,
// published through the write path, does not arrive: the cache is distrusted (verify
// goes to Redis) and the subscription is made again on the new primary.
func TestFollow_SubscriptionOnADemotedPrimaryIsDistrustedAndMoved(t *testing.T) {
	g := redistest.StartGroup(t, redistest.GroupOptions{Replicas: 1, Sentinels: 3})
	elsewhere := redistest.Start(t, redistest.Options{})
	client, err := blacklist.NewClient(blacklist.ClientConfig{Mode: blacklist.ModeSentinel, Addrs: g.SentinelAddrs(), MasterName: g.MasterName, Timeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	s := blacklist.NewStore(client, blacklist.StoreOptions{Prefix: "canary:"})
	t.Cleanup(s.Close)
	cache, err := verifycache.New(tokentest.StaticKeys{}, verifycache.Options{Size: 10})
	if err != nil {
		t.Fatal(err)
	}
	var logs lockedBuffer
	ctx, stop := context.WithCancel(context.Background())
	followed := make(chan struct{})
	go func() {
		defer close(followed)
		s.Follow(ctx, sessions.Revocations{Cache: cache, Keys: ignoredKeys{}}, blacklist.FollowOptions{
			HealthInterval: 100 * time.Millisecond, RetryInterval: 50 * time.Millisecond,
			Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		})
	}()
	t.Cleanup(func() {
		stop()
		<-followed
	})
	poll.UntilTrue(t, 5*time.Second, "the first subscription", cache.Trusted)
	bg := context.Background()
	old, err := g.Primary(bg)
	if err != nil {
		t.Fatal(err)
	}
	if n := subscribers(t, old, s.RevocationChannel()); n != 1 {
		t.Fatalf("%d subscriptions on the primary, want 1", n)
	}

	if err := g.Failover(bg); err != nil {
		t.Fatal(err)
	}
	var promoted string
	poll.UntilTrue(t, 15*time.Second, "Sentinel to promote the replica", func() bool {
		promoted, err = g.Primary(bg)
		return err == nil && promoted != old
	})
	host, port, _ := net.SplitHostPort(elsewhere.Addr)
	if _, err := redistest.Command(old, "REPLICAOF", host, port); err != nil {
		t.Fatal(err)
	}
	poll.UntilTrue(t, 2*time.Second, "the cache to be distrusted once canaries stop arriving", func() bool { return !cache.Trusted() })
	poll.UntilTrue(t, 10*time.Second, "the cache to be trusted on a new subscription", cache.Trusted)
	if n := subscribers(t, promoted, s.RevocationChannel()); n != 1 {
		t.Fatalf("%d subscriptions on the promoted primary, want 1", n)
	}
	poll.UntilTrue(t, 2*time.Second, "the subscription on the demoted node to be closed", func() bool {
		return subscribers(t, old, s.RevocationChannel()) == 0
	})
	if !strings.Contains(logs.String(), "canary") {
		t.Fatalf("the subscription was not given up for its canary: %s", logs.String())
	}
}

// subscribers counts the subscriptions to channel on the node at addr.
func subscribers(t *testing.T, addr, channel string) int64 {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	n, err := c.PubSubNumSub(context.Background(), channel).Result()
	if err != nil {
		t.Fatal(err)
	}
	return n[channel]
}

// lockedBuffer is a log sink written from Follow's goroutine.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
