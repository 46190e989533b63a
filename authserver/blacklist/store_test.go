package blacklist_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hiringo/auth-operator/authserver/blacklist"
	"github.com/hiringo/auth-operator/internal/testutil/redistest"
)

func newStore(t testing.TB, srv *redistest.Server) (*blacklist.Store, redis.UniversalClient) {
	t.Helper()
	client, err := blacklist.NewClient(blacklist.ClientConfig{Addrs: []string{srv.Addr}, Timeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	s := blacklist.NewStore(client, blacklist.StoreOptions{Prefix: "test:"})
	t.Cleanup(s.Close)
	return s, client
}

func TestAdd_SecondAddIsAlreadyBlacklisted(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	s, _ := newStore(t, srv)
	ctx := context.Background()
	until := time.Now().Add(time.Minute)
	if err := s.Revoke(ctx, blacklist.Tok("sig:a"), blacklist.Until(until)); err != nil {
		t.Fatalf("first Add: %v", err)
	}
	if err := s.Revoke(ctx, blacklist.Tok("sig:a"), blacklist.Until(until)); !errors.Is(err, blacklist.ErrRevoked) {
		t.Fatalf("second Add: err = %v, want ErrRevoked", err)
	}
	for id, want := range map[string]bool{"sig:a": true, "sig:b": false} {
		got, err := s.Check(ctx, blacklist.Tok(id))
		if err != nil || got != want {
			t.Errorf("Contains(%s) = %v, %v; want %v", id, got, err, want)
		}
	}
}

func TestAdd_EntryExpiresAtTheGivenTime(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	s, client := newStore(t, srv)
	ctx := context.Background()
	until := time.Now().Add(90 * time.Second).Truncate(time.Millisecond)
	if err := s.Revoke(ctx, blacklist.Tok("sig:t"), blacklist.Until(until)); err != nil {
		t.Fatal(err)
	}
	got, err := client.PExpireTime(ctx, s.KeyOf(blacklist.Tok("sig:t"))).Result()
	if err != nil {
		t.Fatal(err)
	}
	if got != time.Duration(until.UnixMilli())*time.Millisecond {
		t.Errorf("PEXPIRETIME = %v, want %v", got, time.Duration(until.UnixMilli())*time.Millisecond)
	}
	if err := s.Revoke(ctx, blacklist.Tok("sig:gone"), blacklist.Until(time.Now().Add(50*time.Millisecond))); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		listed, err := s.Check(ctx, blacklist.Tok("sig:gone"))
		if err != nil {
			t.Fatal(err)
		}
		if !listed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("entry did not expire")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestStore_UnavailableWhenRedisIsDownThenRecovers(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	s, _ := newStore(t, srv)
	ctx := context.Background()
	srv.Kill()
	if err := s.Revoke(ctx, blacklist.Tok("sig:x"), blacklist.Until(time.Now().Add(time.Minute))); !errors.Is(err, blacklist.ErrUnavailable) || errors.Is(err, blacklist.ErrRevoked) {
		t.Errorf("Add with Redis down: err = %v, want ErrUnavailable", err)
	}
	if _, err := s.Check(ctx, blacklist.Tok("sig:x")); !errors.Is(err, blacklist.ErrUnavailable) {
		t.Errorf("Contains with Redis down: err = %v, want ErrUnavailable", err)
	}
	if err := s.Ping(ctx); !errors.Is(err, blacklist.ErrUnavailable) {
		t.Errorf("Ping with Redis down: err = %v, want ErrUnavailable", err)
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := s.Revoke(ctx, blacklist.Tok("sig:x"), blacklist.Until(time.Now().Add(time.Minute))); err != nil {
		t.Errorf("Add after restart: %v", err)
	}
}

func TestAdd_SurvivesARedisCrashWithAOF(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{AppendOnly: true})
	s, _ := newStore(t, srv)
	ctx := context.Background()
	if err := s.Revoke(ctx, blacklist.Tok("sig:durable"), blacklist.Until(time.Now().Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	srv.Kill()
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	listed, err := s.Check(ctx, blacklist.Tok("sig:durable"))
	if err != nil || !listed {
		t.Fatalf("after kill -9 and restart: listed = %v, err = %v; want listed", listed, err)
	}
}

func TestNewClient_ReadsPasswordFromFile(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{Password: "s3cret"})
	dir := t.TempDir()
	file := filepath.Join(dir, "password")
	if err := os.WriteFile(file, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	client, err := blacklist.NewClient(blacklist.ClientConfig{Addrs: []string{srv.Addr}, PasswordFile: file})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	s := blacklist.NewStore(client, blacklist.StoreOptions{Prefix: "p:"})
	defer s.Close()
	if err := s.Ping(context.Background()); err != nil {
		t.Fatalf("Ping with password: %v", err)
	}
	if _, err := blacklist.NewClient(blacklist.ClientConfig{Addrs: []string{srv.Addr}, PasswordFile: filepath.Join(dir, "missing")}); err == nil {
		t.Fatal("missing password file accepted")
	}
}

func TestAdd_PublishesTheRevocationOnceWhenStored(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	s, client := newStore(t, srv)
	ctx := context.Background()
	sub := client.Subscribe(ctx, s.RevocationChannel())
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	until := time.Now().Add(time.Minute)
	if err := s.Revoke(ctx, blacklist.Tok("sig:once"), blacklist.Until(until)); err != nil {
		t.Fatal(err)
	}
	if err := s.Revoke(ctx, blacklist.Tok("sig:once"), blacklist.Until(until)); !errors.Is(err, blacklist.ErrRevoked) {
		t.Fatal(err)
	}
	if err := s.Revoke(ctx, blacklist.Tok("sig:other"), blacklist.Until(until)); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"sig:once", "sig:other"} {
		msg, err := sub.ReceiveMessage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if msg.Payload != want {
			t.Fatalf("published %q, want %q (a repeated logout must not publish)", msg.Payload, want)
		}
	}
}

func TestCheckEvictionPolicy_FlagsEveryEvictingPolicy(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	s, client := newStore(t, srv)
	ctx := context.Background()
	if err := s.CheckEvictionPolicy(ctx); err != nil {
		t.Fatalf("default policy: %v", err)
	}
	for _, policy := range []string{"volatile-lru", "allkeys-lru", "volatile-ttl"} {
		if err := client.ConfigSet(ctx, "maxmemory-policy", policy).Err(); err != nil {
			t.Fatal(err)
		}
		err := s.CheckEvictionPolicy(ctx)
		if !errors.Is(err, blacklist.ErrEvictingPolicy) || !strings.Contains(err.Error(), policy) {
			t.Errorf("%s: err = %v", policy, err)
		}
	}
}

func TestCheckEvictionPolicy_UnreachableIsUnavailable(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	s, _ := newStore(t, srv)
	srv.Kill()
	if err := s.CheckEvictionPolicy(context.Background()); !errors.Is(err, blacklist.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
}

// TestClose_CallsDuringAndAfterFailInsteadOfPanicking closes the store while callers
// are still adding, as a shutdown whose drain timed out does: every call returns,
// none panics, and a call that did not complete reports the store unavailable.
func TestClose_CallsDuringAndAfterFailInsteadOfPanicking(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	s, _ := newStore(t, srv)
	ctx := context.Background()
	until := time.Now().Add(time.Minute)
	var wg sync.WaitGroup
	errs := make(chan error, 8*50)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				errs <- s.Revoke(ctx, blacklist.Tok(fmt.Sprintf("sig:close-%d-%d", w, i)), blacklist.Until(until))
			}
		}()
	}
	time.Sleep(5 * time.Millisecond)
	s.Close()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil && !errors.Is(err, blacklist.ErrUnavailable) {
			t.Fatalf("Add during Close: %v, want nil or ErrUnavailable", err)
		}
	}
	if err := s.Revoke(ctx, blacklist.Tok("sig:late"), blacklist.Until(until)); !errors.Is(err, blacklist.ErrUnavailable) {
		t.Fatalf("Add after Close: %v, want ErrUnavailable", err)
	}
	if _, err := s.Check(ctx, blacklist.Tok("sig:late")); !errors.Is(err, blacklist.ErrUnavailable) {
		t.Fatalf("Contains after Close: %v, want ErrUnavailable", err)
	}
}

// TestKeys_OfOneUserShareAHashTag: every key of one user's tokens carries the same
// hash tag, so a Redis Cluster keeps them in one slot and one MGET or script reads
// them all; another user's tag differs.
func TestKeys_OfOneUserShareAHashTag(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	s, client := newStore(t, srv)
	ctx := context.Background()
	sub := blacklist.Subject{UserID: "u-1", TokenID: "sig:x", SessionID: "s-1", Stamp: "st-1", IssuedAt: time.Now()}
	if err := s.Revoke(ctx, sub, blacklist.Until(time.Now().Add(time.Minute))); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CutOff(ctx, sub, false, time.Minute); err != nil {
		t.Fatal(err)
	}
	other := blacklist.Tok("sig:y")
	if err := s.Revoke(ctx, other, blacklist.Until(time.Now().Add(time.Minute))); err != nil {
		t.Fatal(err)
	}
	keys, err := client.Keys(ctx, "test:*").Result()
	if err != nil || len(keys) != 3 {
		t.Fatalf("keys = %v, %v; want the stamp, the cutoff and the other user's token", keys, err)
	}
	tags := map[string]int{}
	for _, k := range keys {
		open, end := strings.Index(k, "{"), strings.Index(k, "}")
		if open < 0 || end < open+2 {
			t.Fatalf("key %s has no hash tag", k)
		}
		tags[k[open:end+1]]++
	}
	if len(tags) != 2 {
		t.Fatalf("hash tags %v: want one per user", tags)
	}
	for tag, n := range tags {
		if n == 2 {
			return
		}
		_ = tag
	}
	t.Fatalf("hash tags %v: want u-1's stamp and cutoff under one", tags)
}

// TestCheckVersion_ARealRedisSevenIsAccepted asks the package's redis-server (7.x, as
// the managed Redis runs) for its version; a server that is down is unavailable.
func TestCheckVersion_ARealRedisSevenIsAccepted(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	s, _ := newStore(t, srv)
	if err := s.CheckVersion(context.Background()); err != nil {
		t.Fatalf("CheckVersion of %s: %v", redistest.Binary(), err)
	}
	srv.Kill()
	if err := s.CheckVersion(context.Background()); !errors.Is(err, blacklist.ErrUnavailable) {
		t.Fatalf("CheckVersion of a stopped Redis: %v, want ErrUnavailable", err)
	}
}

// TestIssue_NeverSignsWhatTheStoreRefuses issues sessions right after what would refuse
// them: a logout everywhere in the same second, a single-session login of the same
// user (then issuance without single-session, as after a configuration change), and a
// detected data loss. Each new session's iat comes after it, and the store accepts it.
func TestIssue_NeverSignsWhatTheStoreRefuses(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	s, _ := newStore(t, srv)
	ctx := context.Background()
	multi := blacklist.SessionPolicy{RecordLifetime: time.Hour}
	single := blacklist.SessionPolicy{RecordLifetime: time.Hour, SingleSession: true, MarkerLifetime: time.Hour}
	issue := func(user, session string, p blacklist.SessionPolicy) blacklist.Subject {
		t.Helper()
		sub := blacklist.Subject{UserID: user, TokenID: "jti:" + session, SessionID: session, Stamp: "st-" + session}
		iat, err := s.Issue(ctx, sub, p)
		if err != nil {
			t.Fatal(err)
		}
		sub.IssuedAt = iat
		return sub
	}
	refused := func(what string, sub blacklist.Subject, want bool) {
		t.Helper()
		if listed, err := s.Check(ctx, sub); err != nil || listed != want {
			t.Errorf("%s: listed %v, %v; want %v", what, listed, err, want)
		}
	}

	first := issue("u-1", "s-1", multi)
	if _, err := s.CutOff(ctx, first, true, time.Hour); err != nil {
		t.Fatal(err)
	}
	refused("the session the logout everywhere ended", first, true)
	refused("a login right after a logout everywhere", issue("u-1", "s-2", multi), false)

	only := issue("u-2", "s-3", single)
	refused("a single-session login", only, false)
	refused("a login without single-session right after it", issue("u-2", "s-4", multi), false)

	if _, err := s.CheckGeneration(ctx); err != nil {
		t.Fatal(err)
	}
	before := issue("u-3", "s-5", multi)
	if _, err := redistest.Command(srv.Addr, "FLUSHALL"); err != nil {
		t.Fatal(err)
	}
	if ev, err := s.CheckGeneration(ctx); err != nil || !ev.Lost {
		t.Fatalf("generation check after FLUSHALL: %+v, %v", ev, err)
	}
	refused("a session issued before the data loss", before, true)
	refused("a login right after the detected loss", issue("u-3", "s-6", multi), false)
}

// TestRevoke_RunsAgainAfterRedisForgetsItsScripts: the store runs its scripts by
// SHA-1; after SCRIPT FLUSH (as after a restart or a failover) the next logout is
// still stored, and a second logout of the token is still already blacklisted.
func TestRevoke_RunsAgainAfterRedisForgetsItsScripts(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	s, _ := newStore(t, srv)
	ctx := context.Background()
	until := blacklist.Until(time.Now().Add(time.Hour))
	if err := s.Revoke(ctx, blacklist.Tok("sig:before"), until); err != nil {
		t.Fatal(err)
	}
	if _, err := redistest.Command(srv.Addr, "SCRIPT", "FLUSH"); err != nil {
		t.Fatal(err)
	}
	if err := s.Revoke(ctx, blacklist.Tok("sig:after"), until); err != nil {
		t.Fatalf("logout after SCRIPT FLUSH: %v", err)
	}
	if err := s.Revoke(ctx, blacklist.Tok("sig:after"), until); !errors.Is(err, blacklist.ErrRevoked) {
		t.Fatalf("second logout after SCRIPT FLUSH: %v, want already blacklisted", err)
	}
}
