package blacklist_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hiringo/auth-operator/authserver/blacklist"
	"github.com/hiringo/auth-operator/internal/testutil/redistest"
)

// TestRevoke_AnExpiryAlreadyPastForRedisIsAFailure: Redis answers OK to SET … PXAT
// <past> and stores nothing (a server clock far behind Redis'); such a logout must
// not be reported as done.
func TestRevoke_AnExpiryAlreadyPastForRedisIsAFailure(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	s, client := newStore(t, srv)
	ctx := context.Background()
	err := s.Revoke(ctx, blacklist.Tok("sig:past"), blacklist.Until(time.Now().Add(-time.Second)))
	if !errors.Is(err, blacklist.ErrUnavailable) || !errors.Is(err, blacklist.ErrNotStored) {
		t.Fatalf("Revoke with a past expiry: %v, want ErrUnavailable and ErrNotStored", err)
	}
	if n, err := client.Exists(ctx, s.KeyOf(blacklist.Tok("sig:past"))).Result(); err != nil || n != 0 {
		t.Fatalf("entry exists: %d, %v", n, err)
	}
	if err := s.Revoke(ctx, blacklist.Tok("sig:past"), blacklist.Until(time.Now().Add(time.Minute))); err != nil {
		t.Fatalf("a later logout of the same token: %v, want it stored now", err)
	}
}

// TestRevoke_PublishRefusedStillStoresOnce uses a Redis ACL user without channel
// rights: the logout is stored and answered as done (a retry then says blacklisted,
// as for any second logout), and CheckPublish names the channel and the fix.
func TestRevoke_PublishRefusedStillStoresOnce(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	ctx := context.Background()
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { admin.Close() })
	if err := admin.Do(ctx, "acl", "setuser", "nopub", "on", ">pw", "~*", "+@all", "resetchannels").Err(); err != nil {
		t.Fatal(err)
	}
	client := redis.NewClient(&redis.Options{Addr: srv.Addr, Username: "nopub", Password: "pw"})
	t.Cleanup(func() { client.Close() })
	s := blacklist.NewStore(client, blacklist.StoreOptions{Prefix: "acl:"})
	t.Cleanup(s.Close)
	err := s.CheckPublish(ctx)
	if !errors.Is(err, blacklist.ErrCannotPublish) || !strings.Contains(err.Error(), "&acl:revocations") {
		t.Fatalf("CheckPublish: %v, want ErrCannotPublish naming &acl:revocations", err)
	}
	if err := s.Revoke(ctx, blacklist.Tok("sig:acl"), blacklist.Until(time.Now().Add(time.Minute))); err != nil {
		t.Fatalf("first logout with PUBLISH refused: %v, want it stored and answered", err)
	}
	if err := s.Revoke(ctx, blacklist.Tok("sig:acl"), blacklist.Until(time.Now().Add(time.Minute))); !errors.Is(err, blacklist.ErrRevoked) {
		t.Fatalf("second logout: %v, want ErrRevoked", err)
	}
	if listed, err := s.Check(ctx, blacklist.Tok("sig:acl")); err != nil || !listed {
		t.Fatalf("Check: %v, %v", listed, err)
	}
	full := blacklist.NewStore(admin, blacklist.StoreOptions{Prefix: "acl:"})
	defer full.Close()
	if err := full.CheckPublish(ctx); err != nil {
		t.Fatalf("CheckPublish as the default user: %v", err)
	}
}
