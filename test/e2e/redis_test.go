package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
	"github.com/hiringo/auth-operator/internal/testutil/poll"
	"github.com/hiringo/auth-operator/test/localkubelet"
	"github.com/hiringo/auth-operator/test/localkubelet/devstack"
)

// redisPod returns the managed Redis pod of an AuthService.
func redisPod(t *testing.T, key types.NamespacedName) localkubelet.PodInfo {
	t.Helper()
	for _, p := range stack.Runner.Pods() {
		if p.Namespace == key.Namespace && devstack.IsComponentOf(p, key.Name, "redis") && p.Phase == "Running" {
			return p
		}
	}
	t.Fatalf("no running Redis pod for %s", key)
	return localkubelet.PodInfo{}
}

// TestE2E_RedisSIGKILLKeepsAcknowledgedRevocations kills the managed Redis with SIGKILL
// while logouts are being answered. The operator's default is appendfsync "always": Redis
// writes and fsyncs the AOF before it replies, so every logout answered 200 must still be
// blacklisted after the runner restarts Redis on the same volume, with no window.
func TestE2E_RedisSIGKILLKeepsAcknowledgedRevocations(t *testing.T) {
	t.Parallel()
	key := createReady(t, "redis-kill", nil)
	as := getAuthService(t, key)
	if as.Spec.Redis.Managed == nil || as.Spec.Redis.Managed.AppendFsync != authv1alpha1.AppendFsync("always") {
		t.Fatalf("this test needs the default managed Redis with appendfsync always, got %+v", as.Spec.Redis)
	}
	servers := stack.ServerPods(key)
	if len(servers) == 0 {
		t.Fatal("no auth-server pod")
	}
	m := issuerMinter(t, key)
	t.Logf("logout throughput, one Redis pod, 4 clients for 2s: %.0f/s", logoutRate(t, servers, m, 4, 2*time.Second))

	load := startLogoutLoad(t, servers, m, 1)
	load.waitAcknowledged(t, 50)
	before := redisPod(t, key)
	pid := before.Containers[0].PID
	// The policy the test relies on is the one the running redis-server was given.
	if args := strings.Join(before.Containers[0].Command, " "); !strings.Contains(args, "--appendonly yes --appendfsync always") {
		t.Fatalf("redis-server runs without AOF fsync always: %s", args)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("SIGKILL redis-server %d: %v", pid, err)
	}
	t.Logf("sent SIGKILL to redis-server pid %d", pid)
	poll.Until(t, 60*time.Second, "Redis restarted by the runner and ready", func() error {
		p := redisPod(t, key)
		c := p.Containers[0]
		if c.Restarts < 1 || c.PID == pid || !p.Ready {
			return fmt.Errorf("redis pod %s: restarts %d pid %d ready %v (%s)", p.Name, c.Restarts, c.PID, p.Ready, c.LastExit)
		}
		if !strings.Contains(c.LastExit, "signal 9") {
			return fmt.Errorf("last exit %q, want the SIGKILL", c.LastExit)
		}
		return nil
	})
	// Keep logging out across the restart for a moment, then stop and check.
	time.Sleep(2 * time.Second)
	load.stop()
	acknowledged, otherAnswers := load.acknowledged, load.others
	t.Logf("%d logouts acknowledged; other answers during the outage: %v", len(acknowledged), otherAnswers)
	for code := range otherAnswers {
		if code != http.StatusServiceUnavailable && code != 0 {
			t.Errorf("during the outage a logout was answered %d; want 200 or 503 only", code)
		}
	}
	for i, tok := range acknowledged {
		var last reply
		poll.Until(t, 30*time.Second, fmt.Sprintf("acknowledged logout %d still blacklisted", i), func() error {
			r, err := call(http.MethodGet, servers[i%len(servers)].URL+"/auth/verify", tok)
			if err != nil {
				return err
			}
			last = r
			if r.code == http.StatusServiceUnavailable {
				return fmt.Errorf("Redis not answering yet: %s", r.body)
			}
			return nil
		})
		if last.code != http.StatusUnauthorized || !strings.Contains(last.body, "token is blacklisted") {
			t.Fatalf("logout %d of %d was acknowledged before the kill but the token verifies again: %d %s", i, len(acknowledged), last.code, last.body)
		}
	}
}
