package poll

import (
	"context"
	"fmt"
	"testing"
	"time"
)

const (
	// checksPerTimeout is about how many times a condition is checked before the timeout.
	checksPerTimeout = 150
	minInterval      = 5 * time.Millisecond
	maxInterval      = 200 * time.Millisecond
)

// Interval is the pause between two checks of a condition waited on for timeout: about
// a hundred and fiftieth of it, from 5ms for in-process state up to 200ms for a cluster.
func Interval(timeout time.Duration) time.Duration {
	return min(max(timeout/checksPerTimeout, minInterval), maxInterval)
}

// Until checks check until it returns nil and fails t with what and the last error when
// it still fails after timeout.
func Until(t testing.TB, timeout time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached within %s: %v", what, timeout, err)
		}
		time.Sleep(Interval(timeout))
	}
}

// UntilTrue checks cond until it holds and fails t with what when it still does not
// after timeout.
func UntilTrue(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached within %s", what, timeout)
		}
		time.Sleep(Interval(timeout))
	}
}

// UntilContext checks check until it returns nil, and returns the last error, naming the
// timeout, when it still fails after timeout or ctx ends: for waits outside a test (a
// TestMain's set-up).
func UntilContext(ctx context.Context, timeout time.Duration, check func() error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		err := check()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not reached within %s: %w", timeout, err)
		case <-time.After(Interval(timeout)):
		}
	}
}
