package poll

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestInterval(t *testing.T) {
	for _, tc := range []struct {
		timeout, want time.Duration
	}{
		{100 * time.Millisecond, 5 * time.Millisecond},
		{time.Second, 6666666 * time.Nanosecond},
		{15 * time.Second, 100 * time.Millisecond},
		{2 * time.Minute, 200 * time.Millisecond},
	} {
		if got := Interval(tc.timeout); got != tc.want {
			t.Errorf("Interval(%s) = %s, want %s", tc.timeout, got, tc.want)
		}
	}
}

func TestUntil_ReturnsOnceTheCheckPasses(t *testing.T) {
	calls := 0
	Until(t, time.Second, "third call", func() error {
		calls++
		if calls < 3 {
			return fmt.Errorf("call %d", calls)
		}
		return nil
	})
	if calls != 3 {
		t.Fatalf("check called %d times, want 3", calls)
	}
}

func TestUntilTrue_ReturnsOnceTheConditionHolds(t *testing.T) {
	calls := 0
	UntilTrue(t, time.Second, "third call", func() bool {
		calls++
		return calls == 3
	})
	if calls != 3 {
		t.Fatalf("cond called %d times, want 3", calls)
	}
}

// recorder is a testing.TB that records a Fatalf instead of ending the test, so the
// failure path can be checked.
type recorder struct {
	testing.TB
	failed string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = fmt.Sprintf(format, args...)
	panic(r)
}

// failure runs wait with a recorder and returns the message it failed with.
func failure(t *testing.T, wait func(testing.TB)) (msg string) {
	t.Helper()
	r := &recorder{TB: t}
	defer func() {
		if p := recover(); p != nil && p != r {
			panic(p)
		}
		msg = r.failed
	}()
	wait(r)
	return ""
}

func TestUntil_FailsWithWhatAndTheLastError(t *testing.T) {
	msg := failure(t, func(tb testing.TB) {
		Until(tb, 20*time.Millisecond, "the door to open", func() error { return errors.New("still shut") })
	})
	if want := "the door to open: not reached within 20ms: still shut"; msg != want {
		t.Fatalf("failed with %q, want %q", msg, want)
	}
}

func TestUntilTrue_FailsWithWhat(t *testing.T) {
	msg := failure(t, func(tb testing.TB) {
		UntilTrue(tb, 20*time.Millisecond, "the door to open", func() bool { return false })
	})
	if want := "the door to open: not reached within 20ms"; msg != want {
		t.Fatalf("failed with %q, want %q", msg, want)
	}
}
