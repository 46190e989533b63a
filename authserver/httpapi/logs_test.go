package httpapi_test

import (
	"bytes"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hiringo/auth-operator/internal/testutil/redistest"
	"github.com/hiringo/auth-operator/internal/testutil/tokentest"
)

// syncBuffer is a log sink safe for concurrent handlers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func withLogger(l *slog.Logger) harnessOption {
	return func(c *harnessConfig) { c.cfg.Logger = l }
}

// TestLogs_NeverHoldTheToken logs at debug level through every path that logs (Redis
// down on logout and verify) and checks that no token, signature or blacklist id
// reaches the log.
func TestLogs_NeverHoldTheToken(t *testing.T) {
	var sink syncBuffer
	log := slog.New(slog.NewJSONHandler(&sink, &slog.HandlerOptions{Level: slog.LevelDebug}))
	redis := redistest.Start(t, redistest.Options{})
	h := newHarness(t, redis, withLogger(log))
	tok := tokentest.Issue(t, h.set, 15*time.Minute)
	h.do(http.MethodPost, "/auth/logout", tok)
	redis.Kill()
	h.do(http.MethodPost, "/auth/logout", tokentest.Issue(t, h.set, 16*time.Minute))
	h.do(http.MethodGet, "/auth/verify", tok)
	out := sink.String()
	if !strings.Contains(out, "blacklist store unavailable") {
		t.Fatalf("expected the outage to be logged, got %q", out)
	}
	parts := strings.Split(tok, ".")
	for _, secret := range append(parts, tok) {
		if strings.Contains(out, secret) {
			t.Errorf("log holds part of a token: %q", secret)
		}
	}
}
