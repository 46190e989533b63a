package httpapi_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/redis/go-redis/v9"

	"github.com/hiringo/auth-operator/authserver/blacklist"
	"github.com/hiringo/auth-operator/authserver/tokentest"
)

// blacklistKeys lists the Redis keys h's server has written.
func (h *harness) blacklistKeys(t *testing.T) (*redis.Client, []string) {
	t.Helper()
	rc := redis.NewClient(&redis.Options{Addr: h.redis.Addr})
	t.Cleanup(func() { rc.Close() })
	keys, err := rc.Keys(context.Background(), h.prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	return rc, keys
}

// TestLogout_EntryLivesUntilExpPlusLeewayUnderADigest reads the entry a logout writes
// in Redis: one key under the prefix, named by a digest that holds no part of the
// token, expiring exactly at exp plus the leeway (so the token cannot become valid
// again while it would still verify).
func TestLogout_EntryLivesUntilExpPlusLeewayUnderADigest(t *testing.T) {
	h := newHarness(t, nil)
	tok := tokentest.Issue(t, h.set, 15*time.Minute)
	h.do(http.MethodPost, "/auth/logout", tok).expect(t, http.StatusOK, `{"success":true,"message":"Success","payload":{"id":"66312a78-1f9e-4d78-a9fb-231e84967f60"}}`)
	rc, keys := h.blacklistKeys(t)
	if len(keys) != 1 || !strings.HasPrefix(keys[0], h.prefix+"bl:sig:") {
		t.Fatalf("keys after one logout = %v, want one %sbl:sig:<digest>", keys, h.prefix)
	}
	for _, part := range strings.Split(tok, ".") {
		if strings.Contains(keys[0], part) {
			t.Fatalf("key %s holds a part of the token", keys[0])
		}
	}
	var claims jwt.RegisteredClaims
	if _, _, err := jwt.NewParser().ParseUnverified(tok, &claims); err != nil {
		t.Fatal(err)
	}
	got, err := rc.PExpireTime(context.Background(), keys[0]).Result()
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Duration(claims.ExpiresAt.Add(testLeeway).UnixMilli()) * time.Millisecond; got != want {
		t.Fatalf("entry expires at %v (unix), want exp + leeway = %v", got, want)
	}
}

// TestLogout_TooFewReplicasIs503NotSuccess runs logout against a store that requires
// one replica acknowledgement from a Redis that has none: the answer is 503, never
// a 200 that a failover could lose, and a retry finds the entry on the primary.
func TestLogout_TooFewReplicasIs503NotSuccess(t *testing.T) {
	h := newHarness(t, nil)
	client, err := blacklist.NewClient(blacklist.ClientConfig{Addrs: []string{h.redis.Addr}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	acking := blacklist.NewStore(client, blacklist.StoreOptions{
		Prefix:      h.prefix,
		ReplicaAcks: blacklist.ReplicaAcks{Min: 1, Timeout: 100 * time.Millisecond},
	})
	t.Cleanup(acking.Close)
	h = startHarness(t, h.redis, h.dir, h.set, h.prefix, func(c *harnessConfig) { c.store = acking })
	tok := tokentest.Issue(t, h.set, 15*time.Minute)
	h.do(http.MethodPost, "/auth/logout", tok).expect(t, http.StatusServiceUnavailable, errorBody("blacklist store unavailable"))
	h.do(http.MethodPost, "/auth/logout", tok).expect(t, http.StatusUnauthorized, errorBody("token is blacklisted"))
}
