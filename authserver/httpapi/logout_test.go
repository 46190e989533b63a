package httpapi_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hiringo/auth-operator/authserver/blacklist"
	"github.com/hiringo/auth-operator/authserver/sessions"
	"github.com/hiringo/auth-operator/authserver/token"
	"github.com/hiringo/auth-operator/internal/testutil/tokentest"
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
	// The generation marker is the server's, written before any request.
	return rc, slices.DeleteFunc(keys, func(k string) bool { return k == generationMarker(h.prefix) })
}

// TestLogout_EntryLivesUntilExpPlusLeewayCapUnderADigest reads the entries logouts
// write in Redis: one key under the prefix and the user's hash tag, named by a digest
// that holds no part of the token. A token without a session gets a per-token entry
// expiring at exp plus the leeway cap plus the skew margin, whatever this server's
// own leeway (a leeway raised later must not revive it); a token of a session the
// store has no record of (one issued before records) gets its stamp's entry, living
// until a refresh token of that stamp of the longest refresh lifetime any server may
// issue could expire, whatever this server's own (TestSessions_RevocationsOutlive…
// covers a session with a record).
func TestLogout_EntryLivesUntilExpPlusLeewayCapUnderADigest(t *testing.T) {
	h := newHarness(t, nil, onRedis)
	ctx := context.Background()
	noSession := tokentest.Claims(15 * time.Minute)
	noSession.User.Auth = token.Session{}
	tok := tokentest.Sign(t, tokentest.Active(t, h.set).Private, tokentest.Active(t, h.set).ID, noSession)
	h.do(http.MethodPost, "/auth/logout", tok).expect(t, http.StatusOK, loggedOutBody)
	rc, keys := h.blacklistKeys(t)
	if len(keys) != 1 || !strings.HasPrefix(keys[0], h.prefix+"{") || !strings.Contains(keys[0], "}:bl:sig:") {
		t.Fatalf("keys after one logout = %v, want one %s{<user>}:bl:sig:<digest>", keys, h.prefix)
	}
	for _, part := range strings.Split(tok, ".") {
		if strings.Contains(keys[0], part) {
			t.Fatalf("key %s holds a part of the token", keys[0])
		}
	}
	got, err := rc.PExpireTime(ctx, keys[0]).Result()
	if err != nil {
		t.Fatal(err)
	}
	want := noSession.ExpiresAt.Add(token.MaxLeeway + sessions.ClockSkewMargin)
	if got != time.Duration(want.UnixMilli())*time.Millisecond {
		t.Fatalf("entry expires at %v (unix), want exp + leeway cap + skew margin = %v", got, want.UnixMilli())
	}

	claims := tokentest.Claims(15 * time.Minute)
	h.do(http.MethodPost, "/auth/logout", tokentest.Sign(t, tokentest.Active(t, h.set).Private, "", claims)).expect(t, http.StatusOK, loggedOutBody)
	_, keys = h.blacklistKeys(t)
	var stamp string
	for _, k := range keys {
		if strings.Contains(k, "}:stamp:") {
			stamp = k
		}
	}
	if len(keys) != 2 || stamp == "" || strings.Contains(stamp, claims.User.Auth.Token) || strings.Contains(stamp, claims.User.Auth.ID) {
		t.Fatalf("keys after a session token's logout = %v, want one more {<user>}:stamp:<digest>", keys)
	}
	got, err = rc.PExpireTime(ctx, stamp).Result()
	if err != nil {
		t.Fatal(err)
	}
	want = claims.IssuedAt.Add(sessions.MaxRefreshLifetime + token.MaxLeeway + sessions.ClockSkewMargin)
	if got != time.Duration(want.UnixMilli())*time.Millisecond {
		t.Fatalf("stamp entry expires at %v, want iat + the longest refresh lifetime + leeway cap + margin = %v", got, want.UnixMilli())
	}
}

// TestLogout_TooFewReplicasIs503NotSuccess runs logout against a store that requires
// one replica acknowledgement from a Redis that has none: the answer is 503, never
// a 200 that a failover could lose, and a retry finds the entry on the primary.
func TestLogout_TooFewReplicasIs503NotSuccess(t *testing.T) {
	redis := sharedRedis(t)
	h := newHarness(t, redis, withRedis(blacklist.ClientConfig{Addrs: []string{redis.Addr}}, blacklist.ReplicaAcks{Min: 1, Timeout: 100 * time.Millisecond}))
	tok := tokentest.Issue(t, h.set, 15*time.Minute)
	h.do(http.MethodPost, "/auth/logout", tok).expect(t, http.StatusServiceUnavailable, errorBody("blacklist store unavailable"))
	h.do(http.MethodPost, "/auth/logout", tok).expect(t, http.StatusUnauthorized, errorBody("token is blacklisted"))
}
