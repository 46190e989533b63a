package blacklist_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hiringo/auth-operator/authserver/blacklist"
	"github.com/hiringo/auth-operator/internal/redisconf"
	"github.com/hiringo/auth-operator/internal/testutil/redistest"
)

// usedMemory is a redis-server's used_memory.
func usedMemory(t *testing.T, srv *redistest.Server) int64 {
	t.Helper()
	info, err := redistest.Command(srv.Addr, "INFO", "memory")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no used_memory in %q", info)
	return 0
}

// TestSessionMemory_WithinTheSizingFormula measures on a real redis-server what
// sessions cost, in the worst case the formula covers: a key prefix of 80 characters
// (the operator's derived prefix for a namespace and a name of 30 characters
// together), one user per session, each with a single-session marker, a logout and a
// logout everywhere. Per session it stays within redisconf.BytesPerSession, and an
// empty Redis within redisconf.BaseMemory: the managed Redis's default memory
// (redisconf.MemoryFor) holds the sessions it is sized for.
func TestSessionMemory_WithinTheSizingFormula(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	client, err := blacklist.NewClient(blacklist.ClientConfig{Addrs: []string{srv.Addr}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	prefix := "authserver:payments-prod.auth-main.0f9c1a8e-6a5b-4c1d-9e0f-123456789abc:"
	prefix += strings.Repeat("x", 80-len(prefix))
	s := blacklist.NewStore(client, blacklist.StoreOptions{Prefix: prefix})
	t.Cleanup(s.Close)
	ctx := context.Background()
	empty := usedMemory(t, srv)
	if empty > redisconf.BaseMemory {
		t.Fatalf("an empty Redis uses %d bytes, more than BaseMemory %d", empty, redisconf.BaseMemory)
	}
	const n = 20000
	policy := blacklist.SessionPolicy{RecordLifetime: 720 * time.Hour, SingleSession: true, MarkerLifetime: 2160 * time.Hour}
	for i := range n {
		sub := blacklist.Subject{
			UserID: fmt.Sprintf("user-%d@example.com", i), TokenID: fmt.Sprintf("jti:%d", i),
			SessionID: fmt.Sprintf("3f2a9c1e-5b7d-4e8f-a1b2-%012d", i), Stamp: fmt.Sprintf("%064x", i),
		}
		if sub.IssuedAt, err = s.Issue(ctx, sub, policy); err != nil {
			t.Fatal(err)
		}
		if err := s.Revoke(ctx, sub, blacklist.Until(time.Now().Add(720*time.Hour))); err != nil {
			t.Fatal(err)
		}
		sub.IssuedAt = sub.IssuedAt.Add(-time.Second)
		if _, err := s.CutOff(ctx, sub, false, 2160*time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	perSession := (usedMemory(t, srv) - empty) / n
	t.Logf("%d bytes per session (formula: %d), %d bytes empty (formula: %d)", perSession, redisconf.BytesPerSession, empty, redisconf.BaseMemory)
	if perSession > redisconf.BytesPerSession {
		t.Fatalf("a session costs %d bytes, more than redisconf.BytesPerSession %d", perSession, redisconf.BytesPerSession)
	}
}
