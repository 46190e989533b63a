package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
	"github.com/hiringo/auth-operator/internal/testutil/poll"
)

// logOutAll logs out n fresh tokens and returns them. Each is answered 200, or, when an
// earlier attempt was refused with 503 or got no answer (the entry may have been written on
// the primary without a replica acknowledging it in time, as during a failover), the
// retry finds the token already blacklisted: the logout took effect, and the caller checks
// later that it is kept like the others.
func logOutAll(t *testing.T, key types.NamespacedName, n int) []string {
	t.Helper()
	servers := readyServerPods(t, key, appVerifier)
	if len(servers) == 0 {
		t.Fatal("no auth-server pod")
	}
	m := issuerMinter(t, key)
	var out []string
	for i := range n {
		tok, _, _, err := m.mint(10 * time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		refused, start := "", time.Now() // refused: the first 503, when there was one
		poll.Until(t, time.Minute, fmt.Sprintf("logout %d answered 200", i), func() error {
			r, err := call(http.MethodPost, servers[i%len(servers)].URL+"/auth/logout", tok)
			if err != nil {
				if refused == "" {
					refused = fmt.Sprintf("%v after %s", err, time.Since(start).Round(time.Millisecond))
				}
				return err
			}
			switch {
			case r.code == http.StatusOK:
				return nil
			case refused != "" && r.code == http.StatusUnauthorized && strings.Contains(r.body, "token is blacklisted"):
				t.Logf("logout %d: refused first (%s), blacklisted on the retry", i, refused)
				return nil
			case r.code == http.StatusServiceUnavailable && refused == "":
				refused = fmt.Sprintf("%s after %s", r.body, time.Since(start).Round(time.Millisecond))
			}
			return fmt.Errorf("%d %s", r.code, r.body)
		})
		out = append(out, tok)
	}
	return out
}

// wantBlacklisted checks that every token is refused as blacklisted by the current
// verifiers.
func wantBlacklisted(t *testing.T, key types.NamespacedName, when string, tokens []string) {
	t.Helper()
	servers := readyServerPods(t, key, appVerifier)
	if len(servers) == 0 {
		t.Fatal("no auth-server pod")
	}
	for i, tok := range tokens {
		var last reply
		// The bound is on availability, which the failover tests measure; this test is
		// about data, so it waits out a slow election on a loaded machine and says so.
		start := time.Now()
		poll.Until(t, time.Minute, "Redis answering", func() error {
			r, err := call(http.MethodGet, servers[i%len(servers)].URL+"/auth/verify", tok)
			if err != nil {
				return err
			}
			last = r
			if r.code == http.StatusServiceUnavailable {
				return fmt.Errorf("%s", r.body)
			}
			return nil
		})
		if waited := time.Since(start); waited > 5*time.Second {
			t.Logf("%s: check %d waited %s for Redis", when, i, waited.Round(time.Millisecond))
		}
		if last.code != http.StatusUnauthorized || !strings.Contains(last.body, "token is blacklisted") {
			t.Fatalf("%s: logout %d of %d is lost, the token verifies: %d %s", when, i, len(tokens), last.code, last.body)
		}
	}
}

// waitRedisPods waits until the AuthService runs exactly redis Redis pods and sentinels
// Sentinel pods, all ready: the switch has finished rolling. Their readiness is their exec
// probes': a replica is ready once linked to the primary, a Sentinel once it monitors one.
// Then the auth servers are rolled out on their ACL user, which follows.
func waitRedisPods(t *testing.T, key types.NamespacedName, redis, sentinels int) {
	t.Helper()
	ctx := context.Background()
	poll.Until(t, 2*time.Minute, fmt.Sprintf("%d Redis and %d Sentinel pods", redis, sentinels), func() error {
		counts := map[string]int{}
		ready := true
		for _, app := range []string{appRedis, appSentinel} {
			pods, err := podsOf(ctx, key, app)
			if err != nil {
				return err
			}
			counts[app] = len(pods)
			for _, p := range pods {
				ready = ready && podReady(&p)
			}
		}
		if counts[appRedis] != redis || counts[appSentinel] != sentinels || !ready {
			return fmt.Errorf("%d Redis and %d Sentinel pods, all ready: %v", counts[appRedis], counts[appSentinel], ready)
		}
		return nil
	})
	waitServersOnACLUser(t, key)
}

// switchRedis changes the AuthService's managed Redis and waits until the change is
// rolled out.
func switchRedis(t *testing.T, key types.NamespacedName, ha *authv1alpha1.RedisHighAvailabilitySpec, redis, sentinels int) {
	t.Helper()
	ctx := context.Background()
	as := getAuthService(t, key)
	patch := client.MergeFrom(as.DeepCopy())
	as.Spec.Redis.Managed.HighAvailability = ha
	if err := kube.Patch(ctx, as, patch); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := stack.WaitReady(ctx, key, 3*time.Minute, func(msg string) { t.Logf("%s: %s", key, msg) }); err != nil {
		t.Fatal(err)
	}
	waitRedisPods(t, key, redis, sentinels)
	t.Logf("switched in %s", time.Since(start).Round(time.Millisecond))
}

// TestE2E_SwitchBetweenOneRedisPodAndReplicatedKeepsEveryLogout logs tokens out on one
// Redis pod, switches to replicated Redis (pod 0 is adopted with its volume, replicas copy
// it), logs more out, switches back (the last pod keeps everything), and checks after each
// switch that every logout answered 200 is still blacklisted.
func TestE2E_SwitchBetweenOneRedisPodAndReplicatedKeepsEveryLogout(t *testing.T) {
	t.Parallel()
	key := createReady(t, "redis-switch", nil)
	onOnePod := logOutAll(t, key, 20)

	switchRedis(t, key, &authv1alpha1.RedisHighAvailabilitySpec{}, 3, 3)
	wantBlacklisted(t, key, "after the switch to replicated Redis", onOnePod)
	replicated := logOutAll(t, key, 20)

	switchRedis(t, key, nil, 1, 0)
	wantBlacklisted(t, key, "after the switch back to one pod", append(onOnePod, replicated...))
}
