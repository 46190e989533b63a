package blacklist_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hiringo/auth-operator/authserver/blacklist"
	"github.com/hiringo/auth-operator/internal/testutil/redistest"
)

// TestRevoke_ClientRetryAfterATimeoutIsNotBlacklisted stalls Redis (a busy script on
// another connection, as a slow fsync stalls it) for longer than the client's read
// timeout, so go-redis gives up on the logout's script and resends it on a new
// connection; both copies run once the stall ends, the first one writing. The retried
// copy must recognise that write as its own: a user's first logout is never answered
// "already blacklisted".
func TestRevoke_ClientRetryAfterATimeoutIsNotBlacklisted(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	client, err := blacklist.NewClient(blacklist.ClientConfig{Addrs: []string{srv.Addr}, Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	s := blacklist.NewStore(client, blacklist.StoreOptions{Prefix: "retry:"})
	t.Cleanup(s.Close)
	ctx := context.Background()
	succeeded := 0
	for i, pause := range []time.Duration{250, 300, 350, 400, 450, 500} {
		pause *= time.Millisecond
		id := fmt.Sprintf("sig:retry-%d", i)
		stalled := stall(t, srv.Addr, pause)
		err := s.Revoke(ctx, blacklist.Tok(id), blacklist.Until(time.Now().Add(time.Hour)))
		<-stalled
		switch {
		case errors.Is(err, blacklist.ErrRevoked):
			t.Fatalf("pause %s: a first logout answered already blacklisted (the client's retry found its own write)", pause)
		case err == nil:
			succeeded++
		case !errors.Is(err, blacklist.ErrUnavailable):
			t.Fatalf("pause %s: %v", pause, err)
		}
		if err := s.Revoke(ctx, blacklist.Tok(id), blacklist.Until(time.Now().Add(time.Hour))); err != nil && !errors.Is(err, blacklist.ErrRevoked) {
			t.Fatalf("pause %s: second logout: %v", pause, err)
		}
	}
	t.Logf("%d of 6 first logouts under a write pause succeeded (the rest 503)", succeeded)
}

// stall keeps Redis busy for d with a script that spins, from its own connection;
// the returned channel closes when the script has returned.
func stall(t *testing.T, addr string, d time.Duration) <-chan struct{} {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, ReadTimeout: d + 5*time.Second})
	started := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer c.Close()
		close(started)
		const spin = `local t = redis.call('TIME'); local stop = t[1] * 1000000 + t[2] + tonumber(ARGV[1])
while true do local n = redis.call('TIME'); if n[1] * 1000000 + n[2] >= stop then return 1 end end`
		if err := c.Eval(context.Background(), spin, nil, d.Microseconds()).Err(); err != nil {
			t.Errorf("stalling Redis: %v", err)
		}
	}()
	<-started
	time.Sleep(20 * time.Millisecond)
	return done
}

// TestRevoke_ClientPauseLongerThanTheTimeoutIsNotBlacklisted is the same with CLIENT
// PAUSE … WRITE, where Redis drops the first copy with its closed connection: the
// logout is answered 200 or 503, never "already blacklisted".
func TestRevoke_ClientPauseLongerThanTheTimeoutIsNotBlacklisted(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	client, err := blacklist.NewClient(blacklist.ClientConfig{Addrs: []string{srv.Addr}, Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	s := blacklist.NewStore(client, blacklist.StoreOptions{Prefix: "pause:"})
	t.Cleanup(s.Close)
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { admin.Close() })
	ctx := context.Background()
	for i, pause := range []time.Duration{250, 350, 450} {
		pause *= time.Millisecond
		if err := admin.Do(ctx, "client", "pause", pause.Milliseconds(), "write").Err(); err != nil {
			t.Fatal(err)
		}
		err := s.Revoke(ctx, blacklist.Tok(fmt.Sprintf("sig:pause-%d", i)), blacklist.Until(time.Now().Add(time.Hour)))
		if err != nil && (errors.Is(err, blacklist.ErrRevoked) || !errors.Is(err, blacklist.ErrUnavailable)) {
			t.Fatalf("pause %s: first logout: %v, want success or unavailable", pause, err)
		}
		time.Sleep(pause)
	}
}

// TestCutOff_AResentLogoutEverywhereFindsItsOwnWrite sends the logout-everywhere
// script twice with one nonce, as go-redis resends it after a timeout. The cutoff it
// sets is adjusted (to the presenting token's iat, issued after a cutoff in the same
// second); the resent copy must still find its own write and answer as it did, not
// "already blacklisted". A copy with another nonce (a second logout everywhere with
// the same token) is already blacklisted.
func TestCutOff_AResentLogoutEverywhereFindsItsOwnWrite(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	s, _ := newStore(t, srv)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		sub  blacklist.Subject
	}{
		{"a token of a session, issued a second ahead", blacklist.Subject{UserID: "u-1", TokenID: "jti:1", SessionID: "s-1", Stamp: "st-1", IssuedAt: time.Now().Add(2 * time.Second)}},
		{"a token without a session, issued a second ahead", blacklist.Subject{UserID: "u-2", TokenID: "jti:2", IssuedAt: time.Now().Add(2 * time.Second)}},
		{"a token issued earlier", blacklist.Subject{UserID: "u-3", TokenID: "jti:3", SessionID: "s-3", Stamp: "st-3", IssuedAt: time.Now().Add(-time.Minute)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, first, err := s.CutOffWithNonce(ctx, tc.sub, "nonce-"+tc.sub.UserID, time.Hour)
			if err != nil || code != 1 || first < tc.sub.IssuedAt.Unix() {
				t.Fatalf("logout everywhere: code %d, cutoff %d, %v; want 1 and a cutoff covering the token (iat %d)", code, first, err, tc.sub.IssuedAt.Unix())
			}
			code, again, err := s.CutOffWithNonce(ctx, tc.sub, "nonce-"+tc.sub.UserID, time.Hour)
			if err != nil || code != 1 || again != first {
				t.Fatalf("the resent copy: code %d, cutoff %d, %v; want 1 and the same cutoff %d", code, again, err, first)
			}
			if code, _, err := s.CutOffWithNonce(ctx, tc.sub, "another-nonce", time.Hour); err != nil || code != 0 {
				t.Fatalf("a second logout everywhere with the same token: code %d, %v; want 0 (already blacklisted)", code, err)
			}
		})
	}
}
