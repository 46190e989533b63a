package e2e

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/hiringo/auth-operator/internal/testutil/poll"
)

// logoutLoad logs fresh tokens out from concurrent clients, round robin over the
// verifiers, and records which logouts were acknowledged and when the others failed. Read
// its fields under mu while it runs, or freely after stop.
type logoutLoad struct {
	mu sync.Mutex
	// acknowledged are the tokens whose logout was answered 200, and acknowledgedAt when.
	acknowledged   []string
	acknowledgedAt []time.Time
	// others counts the other answers by status code (0: no answer within the timeout).
	others map[int]int
	// failures are the times of those other answers.
	failures []time.Time
	// stop ends the clients and waits for them; it also runs at cleanup, so a failing
	// check never leaves them running.
	stop func()
}

func startLogoutLoad(t *testing.T, servers []serverPod, m *minter, clients int) *logoutLoad {
	t.Helper()
	l := &logoutLoad{others: map[int]int{}}
	done := make(chan struct{})
	var wg sync.WaitGroup
	l.stop = sync.OnceFunc(func() { close(done); wg.Wait() })
	t.Cleanup(l.stop)
	for c := range clients {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				tok, _, _, err := m.mint(10 * time.Minute)
				if err != nil {
					t.Errorf("minting: %v", err)
					return
				}
				r, err := call(http.MethodPost, servers[(c+i)%len(servers)].URL+"/auth/logout", tok)
				l.mu.Lock()
				if err == nil && r.code == http.StatusOK {
					l.acknowledged = append(l.acknowledged, tok)
					l.acknowledgedAt = append(l.acknowledgedAt, time.Now())
				} else {
					l.others[r.code]++
					l.failures = append(l.failures, time.Now())
				}
				l.mu.Unlock()
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
	return l
}

// waitAcknowledged waits until n logouts were acknowledged.
func (l *logoutLoad) waitAcknowledged(t *testing.T, n int) {
	t.Helper()
	poll.Until(t, 20*time.Second, "logouts acknowledged", func() error {
		l.mu.Lock()
		defer l.mu.Unlock()
		if len(l.acknowledged) < n {
			return fmt.Errorf("%d of %d acknowledged", len(l.acknowledged), n)
		}
		return nil
	})
}

// acknowledgedSince counts the logouts answered 200 after t.
func (l *logoutLoad) acknowledgedSince(t time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, at := range l.acknowledgedAt {
		if at.After(t) {
			n++
		}
	}
	return n
}

// outages are, for each kill, how long logouts failed after it: from the kill to the last
// failure before the next kill (or the end).
func outages(kills, failures []time.Time) []time.Duration {
	out := make([]time.Duration, len(kills))
	for i, k := range kills {
		for _, f := range failures {
			if f.After(k) && (i+1 == len(kills) || f.Before(kills[i+1])) {
				out[i] = max(out[i], f.Sub(k))
			}
		}
	}
	return out
}
