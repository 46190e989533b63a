package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
	"github.com/hiringo/auth-operator/internal/testutil/poll"
	"github.com/hiringo/auth-operator/test/localkubelet"
	"github.com/hiringo/auth-operator/test/localkubelet/devstack"
)

// sentinelPrimary asks a Sentinel of the AuthService for its primary's local address.
func sentinelPrimary(ctx context.Context, key types.NamespacedName, password string) (string, error) {
	addr, ok := stack.Runner.ServiceAddr(key.Namespace, key.Name+"-redis-sentinel", 26379)
	if !ok {
		return "", fmt.Errorf("no local address for Service %s-redis-sentinel", key.Name)
	}
	c := redis.NewSentinelClient(&redis.Options{Addr: addr, Password: password, DialTimeout: time.Second, ReadTimeout: time.Second})
	defer c.Close()
	hp, err := c.GetMasterAddrByName(ctx, key.Name).Result()
	if err != nil {
		return "", err
	}
	return net.JoinHostPort(hp[0], hp[1]), nil
}

// redisPodAt returns the running Redis pod (not a Sentinel) whose container listens on addr.
func redisPodAt(key types.NamespacedName, addr string) (localkubelet.PodInfo, bool) {
	for _, p := range stack.Runner.Pods() {
		if p.Namespace != key.Namespace || !devstack.IsComponentOf(p, key.Name, "redis") {
			continue
		}
		for _, c := range p.Containers {
			if c.Name == "redis" && c.Ports[6379] == addr {
				return p, true
			}
		}
	}
	return localkubelet.PodInfo{}, false
}

// logoutRate is how many logouts per second conc clients get answered 200 for d: a short
// bounded measurement for the report, not a speed test.
func logoutRate(t *testing.T, servers []devstack.ServerPod, m minter, conc int, d time.Duration) float64 {
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

// TestE2E_ReplicatedRedisPrimaryKilledLosesNoAcknowledgedLogout runs an AuthService with
// a replicated managed Redis (three Redis pods, three Sentinels, one replica acknowledging
// each logout), SIGKILLs the primary's redis-server under logout load from several
// clients, and checks that the Sentinels promote a replica, that verify answers 200 again
// within seconds, and that every logout answered 200, before or after the kill, is still
// blacklisted.
func TestE2E_ReplicatedRedisPrimaryKilledLosesNoAcknowledgedLogout(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	key := createReady(t, "redis-ha", func(as *authv1alpha1.AuthService) {
		as.Spec.Redis.Managed = &authv1alpha1.ManagedRedisSpec{HighAvailability: &authv1alpha1.RedisHighAvailabilitySpec{}}
	})
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
	if err := kube.Get(ctx, types.NamespacedName{Namespace: key.Namespace, Name: key.Name + "-redis"}, &secret); err != nil {
		t.Fatal(err)
	}
	password := string(secret.Data["password"])
	t.Cleanup(func() {
		if t.Failed() {
			logRedisPods(t, key)
		}
	})
	servers := stack.ServerPods(key)
	if len(servers) == 0 {
		t.Fatal("no auth-server pod")
	}
	m := issuerMinter(t, key)
	t.Logf("logout throughput, replicated Redis (WAIT 1), 4 clients for 2s: %.0f/s", logoutRate(t, servers, m, 4, 2*time.Second))

	var primary string
	poll.Until(t, 30*time.Second, "the Sentinels name a primary with two replicas", func() error {
		var err error
		if primary, err = sentinelPrimary(ctx, key, password); err != nil {
			return err
		}
		c := redis.NewClient(&redis.Options{Addr: primary, Password: password})
		defer c.Close()
		info, err := c.Info(ctx, "replication").Result()
		if err != nil {
			return err
		}
		if !strings.Contains(info, "connected_slaves:2") {
			return fmt.Errorf("primary %s: %s", primary, info)
		}
		return nil
	})
	pod, ok := redisPodAt(key, primary)
	if !ok {
		t.Fatalf("no Redis pod listens on the primary's address %s", primary)
	}

	load := startLogoutLoad(t, servers, m, 4)
	load.waitAcknowledged(t, 100)
	var pid int
	for _, c := range pod.Containers {
		if c.Name == "redis" {
			pid = c.PID
		}
	}
	probe, _, _, err := m.mint(10 * time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	// The local kubelet, like a real one, restarts a killed container at once, sooner than
	// the Sentinels' down-after (1s): a primary killed once is back with its AOF before any
	// failover. So its process is killed again each time it comes back, as a crash-looping
	// primary or a lost node would be, until the Sentinels promote a replica.
	kills := 0
	var promoted string
	poll.Until(t, 45*time.Second, "the Sentinels promote a replica", func() error {
		if p, ok := redisPodAt(key, primary); ok {
			for _, c := range p.Containers {
				if c.Name == "redis" && c.Running && c.PID != 0 {
					if err := syscall.Kill(c.PID, syscall.SIGKILL); err == nil {
						kills++
					}
				}
			}
		}
		p, err := sentinelPrimary(ctx, key, password)
		if err != nil {
			return err
		}
		if p == primary {
			return fmt.Errorf("still %s after %d kills", p, kills)
		}
		promoted = p
		return nil
	})
	t.Logf("sent SIGKILL %d times to the primary %s (%s, first pid %d)", kills, pod.Name, primary, pid)
	failedOver := time.Since(killed)
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
	recovered := time.Since(killed)
	time.Sleep(2 * time.Second)
	load.stop()
	acknowledged, others, failures := load.acknowledged, load.others, load.failures

	var window time.Duration
	if i := slices.IndexFunc(failures, func(f time.Time) bool { return !f.Before(killed) }); i >= 0 {
		window = failures[len(failures)-1].Sub(failures[i])
	}
	t.Logf("primary %s failed over to %s %s after the first kill; verify answered 200 on every verifier %s after the kill; "+
		"%d logouts acknowledged, other answers %v, logout failures spanned %s",
		primary, promoted, failedOver.Round(time.Millisecond), recovered.Round(time.Millisecond), len(acknowledged), others, window.Round(time.Millisecond))
	for code := range others {
		if code != http.StatusServiceUnavailable {
			t.Errorf("a logout was answered %d (0: no answer within 5s); want 200 or 503 only", code)
		}
	}
	for i, tok := range acknowledged {
		r, err := call(http.MethodGet, servers[i%len(servers)].URL+"/auth/verify", tok)
		if err != nil {
			t.Fatal(err)
		}
		if r.code != http.StatusUnauthorized || !strings.Contains(r.body, "token is blacklisted") {
			t.Fatalf("logout %d of %d was answered 200 but the token verifies after the failover: %d %s", i, len(acknowledged), r.code, r.body)
		}
	}
	// The promoted replica holds the store's generation marker: a failover is no data loss.
	if c := meta.FindStatusCondition(getAuthService(t, key).Status.Conditions, authv1alpha1.BlacklistIntactCondition); c == nil || c.Status != metav1.ConditionTrue {
		t.Errorf("BlacklistIntact after the failover = %+v, want True", c)
	}
}

// logRedisPods logs the tail of every Redis and Sentinel container's log of the
// AuthService, after a failure.
func logRedisPods(t *testing.T, key types.NamespacedName) {
	for _, p := range stack.Runner.Pods() {
		if p.Namespace != key.Namespace || p.Labels["app.kubernetes.io/component"] != "redis" {
			continue
		}
		for _, c := range p.Containers {
			data, err := os.ReadFile(c.LogFile)
			if err != nil {
				continue
			}
			if len(data) > 3000 {
				data = data[len(data)-3000:]
			}
			t.Logf("---- %s/%s (restarts %d, %s) ----\n%s", p.Name, c.Name, c.Restarts, c.LastExit, data)
		}
	}
}
