package e2e

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/hiringo/auth-operator/internal/testutil/poll"
	"github.com/hiringo/auth-operator/test/localkubelet/devstack"
)

// logoutLoad logs fresh tokens out from concurrent clients, round robin over the
// verifiers, and records which logouts were acknowledged and when the others failed. Read
// its fields under mu while it runs, or freely after stop.
type logoutLoad struct {
	mu sync.Mutex
	// acknowledged are the tokens whose logout was answered 200.
	acknowledged []string
	// others counts the other answers by status code (0: no answer within the timeout).
	others map[int]int
	// failures are the times of those other answers.
	failures []time.Time
	// stop ends the clients and waits for them; it also runs at cleanup, so a failing
	// check never leaves them running.
	stop func()
}

func startLogoutLoad(t *testing.T, servers []devstack.ServerPod, m minter, clients int) *logoutLoad {
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
