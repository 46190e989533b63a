package e2e

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hiringo/auth-operator/internal/testutil/poll"
)

// revokedWatch keeps verifying logged-out tokens on every verifier, directly and through the
// Service, and records every answer 200: a revoked token accepted.
type revokedWatch struct {
	mu       sync.Mutex
	checks   int
	accepted []string
	stop     func()
}

func startRevokedWatch(t *testing.T, targets []string, revoked []string) *revokedWatch {
	t.Helper()
	w := &revokedWatch{}
	done := make(chan struct{})
	var wg sync.WaitGroup
	w.stop = sync.OnceFunc(func() { close(done); wg.Wait() })
	t.Cleanup(w.stop)
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
			}
			target, tok := targets[i%len(targets)], revoked[i%len(revoked)]
			r, err := call(http.MethodGet, target+"/auth/verify", tok)
			w.mu.Lock()
			w.checks++
			if err == nil && r.code == http.StatusOK {
				w.accepted = append(w.accepted, fmt.Sprintf("%s at %s", target, time.Now().Format(time.StampMilli)))
			}
			w.mu.Unlock()
		}
	})
	return w
}

// containerIDs maps every container of the namespace's pods to its containerd ID and
// restart count, to tell a container that kept running from one that was restarted.
func containerIDs(t *testing.T, ns string) map[string]string {
	t.Helper()
	var pods corev1.PodList
	if err := kube.List(context.Background(), &pods, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, p := range pods.Items {
		for _, cs := range p.Status.ContainerStatuses {
			out[p.Name+"/"+cs.Name] = fmt.Sprintf("%s restarts=%d running=%v", cs.ContainerID, cs.RestartCount, cs.State.Running != nil)
		}
	}
	return out
}

// TestE2E_NodeFaultsLoseNoLogoutAndAcceptNoRevokedToken injects the faults a node suffers
// under logout load, while a watcher keeps presenting logged-out tokens to every verifier:
// a verifier's container killed (the kubelet restarts it), the kubelet restarted and
// containerd restarted (the pods keep running, the same containers), and one verifier cut
// off from Redis inside its network namespace (it fails closed, the other keeps serving).
// No logout answered 200 is lost and no revoked token is ever accepted. It is sequential: the
// kubelet and containerd it restarts are every test's.
func TestE2E_NodeFaultsLoseNoLogoutAndAcceptNoRevokedToken(t *testing.T) {
	ctx := context.Background()
	key := createReady(t, "faults", nil)
	servers := readyServerPods(t, key, appVerifier)
	if len(servers) != 2 {
		t.Fatalf("want 2 verifiers, got %d", len(servers))
	}
	m := issuerMinter(t, key)
	var revoked []string
	for range 20 {
		tok, _, _, err := m.mint(10 * time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if r, err := call(http.MethodPost, servers[0].URL+"/auth/logout", tok); err != nil || r.code != http.StatusOK {
			t.Fatalf("logout before the faults: %d %s %v", r.code, r.body, err)
		}
		revoked = append(revoked, tok)
	}
	service := serverURL(t, key)
	watch := startRevokedWatch(t, []string{servers[0].URL, servers[1].URL, service}, revoked)
	load := startLogoutLoad(t, []serverPod{{Name: "service", URL: service}}, m, 2)
	load.waitAcknowledged(t, 20)
	acknowledgedSince := func(n int) func() error {
		return func() error {
			load.mu.Lock()
			defer load.mu.Unlock()
			if len(load.acknowledged) < n {
				return fmt.Errorf("%d logouts acknowledged, want %d", len(load.acknowledged), n)
			}
			return nil
		}
	}

	t.Run("a killed verifier container is restarted by the kubelet", func(t *testing.T) {
		pod := servers[0].Pod
		before, _ := containerStatus(&pod, "authserver")
		if err := stack.KillContainer(ctx, before.ContainerID); err != nil {
			t.Fatal(err)
		}
		poll.Until(t, 90*time.Second, "restarted and ready", func() error {
			var p corev1.Pod
			if err := kube.Get(ctx, types.NamespacedName{Namespace: pod.Namespace, Name: pod.Name}, &p); err != nil {
				return err
			}
			now, _ := containerStatus(&p, "authserver")
			if now.RestartCount <= before.RestartCount || !now.Ready || !killed(now) {
				return fmt.Errorf("restarts %d ready %v last termination %+v", now.RestartCount, now.Ready, now.LastTerminationState.Terminated)
			}
			return nil
		})
	})

	for _, restart := range []struct {
		name string
		do   func(context.Context) error
	}{
		{"the kubelet", stack.RestartKubelet},
		{"containerd", stack.RestartContainerd},
	} {
		t.Run(restart.name+" restarts and the pods keep running", func(t *testing.T) {
			before := containerIDs(t, key.Namespace)
			load.mu.Lock()
			acknowledged := len(load.acknowledged)
			load.mu.Unlock()
			started := time.Now()
			if err := restart.do(ctx); err != nil {
				t.Fatal(err)
			}
			t.Logf("%s restarted in %s", restart.name, time.Since(started).Round(time.Millisecond))
			poll.Until(t, 30*time.Second, "logouts acknowledged after the restart", acknowledgedSince(acknowledged+20))
			poll.Until(t, time.Minute, "the same containers running", func() error {
				after := containerIDs(t, key.Namespace)
				for c, was := range before {
					if after[c] != was {
						return fmt.Errorf("%s: %s, was %s", c, after[c], was)
					}
				}
				return nil
			})
		})
	}

	t.Run("a verifier cut off from Redis fails closed", func(t *testing.T) {
		// The verifier reaches Redis by its Service: the packets leave the pod for the
		// ClusterIP, which the node translates to the pod's address.
		redis := runningRedisPod(t, key)
		var redisService corev1.Service
		if err := kube.Get(ctx, types.NamespacedName{Namespace: key.Namespace, Name: named(key).RedisName()}, &redisService); err != nil {
			t.Fatal(err)
		}
		var p corev1.Pod
		if err := kube.Get(ctx, types.NamespacedName{Namespace: key.Namespace, Name: servers[0].Name}, &p); err != nil {
			t.Fatal(err)
		}
		cs, _ := containerStatus(&p, "authserver")
		heal, err := stack.CutOff(ctx, cs.ContainerID, redisService.Spec.ClusterIP, redis.Status.PodIP)
		if err != nil {
			t.Fatal(err)
		}
		defer func() {
			if heal != nil {
				_ = heal(ctx)
			}
		}()
		fresh, _, _, err := m.mint(10 * time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		poll.Until(t, 30*time.Second, "the cut-off verifier refuses to vouch for a token", func() error {
			r, err := call(http.MethodGet, servers[0].URL+"/auth/verify", fresh)
			if err != nil {
				return err
			}
			if r.code != http.StatusServiceUnavailable {
				return fmt.Errorf("%d %s", r.code, r.body)
			}
			return nil
		})
		if r, err := call(http.MethodPost, servers[0].URL+"/auth/logout", fresh); err != nil || r.code != http.StatusServiceUnavailable {
			t.Errorf("a logout on the cut-off verifier: %d %s %v, want 503 (not reported as logged out)", r.code, r.body, err)
		}
		if r, err := call(http.MethodGet, servers[1].URL+"/auth/verify", fresh); err != nil || r.code != http.StatusOK {
			t.Errorf("the other verifier: %d %s %v, want 200", r.code, r.body, err)
		}
		if err := heal(ctx); err != nil {
			t.Fatal(err)
		}
		heal = nil
		poll.Until(t, 30*time.Second, "the healed verifier serves again", func() error {
			r, err := call(http.MethodGet, servers[0].URL+"/auth/verify", fresh)
			if err != nil {
				return err
			}
			if r.code != http.StatusOK {
				return fmt.Errorf("%d %s", r.code, r.body)
			}
			return nil
		})
	})

	load.stop()
	watch.stop()
	t.Logf("%d logouts acknowledged under the faults (other answers %v); %d checks of revoked tokens", len(load.acknowledged), load.others, watch.checks)
	if len(watch.accepted) > 0 {
		t.Fatalf("a revoked token was accepted %d times; first: %s", len(watch.accepted), watch.accepted[0])
	}
	for code := range load.others {
		if code != http.StatusServiceUnavailable && code != 0 {
			t.Errorf("a logout was answered %d; want 200 or 503 only", code)
		}
	}
	wantEveryBlacklisted(t, servers, append(revoked, load.acknowledged...), "logged out before or during the faults")
}
