package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
	"github.com/hiringo/auth-operator/internal/testutil/poll"
)

// runningRedisPod returns the managed Redis pod (pod 0 of a single Redis) of an AuthService.
func runningRedisPod(t *testing.T, key types.NamespacedName) corev1.Pod {
	t.Helper()
	pods, err := podsOf(context.Background(), key, appRedis)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods {
		if p.Status.Phase == corev1.PodRunning {
			return p
		}
	}
	t.Fatalf("no running Redis pod for %s", key)
	return corev1.Pod{}
}

// killed reports whether a container's last run ended by SIGKILL (exit code 137).
func killed(cs corev1.ContainerStatus) bool {
	term := cs.LastTerminationState.Terminated
	return term != nil && (term.ExitCode == 137 || term.Signal == 9)
}

// TestE2E_RedisSIGKILLKeepsAcknowledgedRevocations kills the managed Redis's container with
// SIGKILL while logouts are being answered. The operator's default is appendfsync "always":
// Redis writes and fsyncs the AOF before it replies, so every logout answered 200 must still
// be blacklisted after the kubelet restarts the container on the same volume, with no window.
func TestE2E_RedisSIGKILLKeepsAcknowledgedRevocations(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	key := createReady(t, "redis-kill", nil)
	as := getAuthService(t, key)
	if as.Spec.Redis.Managed == nil || as.Spec.Redis.Managed.AppendFsync != authv1alpha1.AppendFsync("always") {
		t.Fatalf("this test needs the default managed Redis with appendfsync always, got %+v", as.Spec.Redis)
	}
	servers := readyServerPods(t, key, appVerifier)
	if len(servers) == 0 {
		t.Fatal("no auth-server pod")
	}
	m := issuerMinter(t, key)
	t.Logf("logout throughput, one Redis pod, 4 clients for 2s: %.0f/s", logoutRate(t, servers, m, 4, 2*time.Second))

	load := startLogoutLoad(t, servers, m, 1)
	load.waitAcknowledged(t, 50)
	before := runningRedisPod(t, key)
	// The policy the test relies on is the one the pod runs redis-server with.
	if args := strings.Join(before.Spec.Containers[0].Command, " "); !strings.Contains(args, "--appendonly yes --appendfsync always") {
		t.Fatalf("redis-server runs without AOF fsync always: %s", args)
	}
	cs, _ := containerStatus(&before, "redis")
	if err := stack.KillContainer(ctx, cs.ContainerID); err != nil {
		t.Fatal(err)
	}
	t.Logf("killed the container %s of %s", cs.ContainerID, before.Name)
	poll.Until(t, 90*time.Second, "Redis restarted by the kubelet and ready", func() error {
		p := runningRedisPod(t, key)
		now, _ := containerStatus(&p, "redis")
		if p.UID != before.UID || now.RestartCount <= cs.RestartCount || !now.Ready || !killed(now) {
			return fmt.Errorf("redis pod %s: restarts %d ready %v last termination %+v", p.Name, now.RestartCount, now.Ready, now.LastTerminationState.Terminated)
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
	wantEveryBlacklisted(t, servers, acknowledged, "acknowledged before the kill")
}

// wantEveryBlacklisted checks that every token is refused as blacklisted, spreading the
// checks over servers, and waits out a store that does not answer yet (503).
func wantEveryBlacklisted(t *testing.T, servers []serverPod, tokens []string, what string) {
	t.Helper()
	for i, tok := range tokens {
		var last reply
		poll.Until(t, 30*time.Second, fmt.Sprintf("token %d (%s) checked", i, what), func() error {
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
		if !rejectedAsBlacklisted(last) {
			t.Fatalf("token %d of %d (%s) verifies again: %d %s", i, len(tokens), what, last.code, last.body)
		}
	}
}
