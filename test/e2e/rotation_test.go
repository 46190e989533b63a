package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
	"github.com/hiringo/auth-operator/internal/testutil/poll"
)

// issued is a token the client minted, and when it stops being valid.
type issued struct {
	tok     string
	kid     string
	expires time.Time
}

// verifyClient keeps calling /auth/verify through the Service with fresh tokens and with
// the unexpired tokens it minted before, as cluster services do across rotations.
type verifyClient struct {
	url string
	m   *minter
	ttl time.Duration

	mu        sync.Mutex
	live      []issued
	newest    map[string]issued
	mintedBy  map[string]int
	lastKid   string
	calls     int
	rejected  []string
	mintFails []string
}

func newVerifyClient(url string, m *minter, ttl time.Duration) *verifyClient {
	return &verifyClient{url: url, m: m, ttl: ttl, newest: map[string]issued{}, mintedBy: map[string]int{}}
}

func (c *verifyClient) run(stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case <-time.After(100 * time.Millisecond):
		}
		tok, kid, _, err := c.m.mint(c.ttl)
		c.mu.Lock()
		if err != nil {
			// The Secret is written whole, so a read never sees a mix of two sets; an error
			// here is a real failure.
			c.mintFails = append(c.mintFails, err.Error())
			c.mu.Unlock()
			continue
		}
		it := issued{tok: tok, kid: kid, expires: time.Now().Add(c.ttl)}
		c.newest[kid], c.lastKid = it, kid
		c.mintedBy[kid]++
		live := c.live[:0]
		for _, old := range c.live {
			if time.Until(old.expires) > 2*time.Second {
				live = append(live, old)
			}
		}
		c.live = append(live, it)
		check := append([]issued(nil), c.live...)
		c.mu.Unlock()
		// The newest token and a spread of older ones, always including the oldest.
		for i := len(check) - 1; i >= 0; i -= 1 + len(check)/8 {
			c.verify(check[i])
		}
		c.verify(check[0])
	}
}

func (c *verifyClient) verify(t issued) {
	r, err := call(http.MethodGet, c.url+"/auth/verify", t.tok)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	if err != nil || r.code != http.StatusOK {
		c.rejected = append(c.rejected, fmt.Sprintf("kid %s: %d %s %v", t.kid, r.code, r.body, err))
	}
}

// rotationMargin bounds, beyond the publish time, how long one rotation takes to reach every
// pod: the operator's pass and the kubelet's update of the mounted Secret and ConfigMap (its
// sync period, 10 s on the local node, plus the watch), on a loaded machine.
const rotationMargin = time.Minute

// adminPort is the auth server's port of /metrics and the probes.
const adminPort = 8081

// activeKidOf asks a pod which key it signs with or takes as active: its
// authserver_active_key_info metric, on its admin port.
func activeKidOf(p serverPod) (string, error) {
	resp, err := httpClient.Get("http://" + net.JoinHostPort(p.Pod.Status.PodIP, strconv.Itoa(adminPort)) + "/metrics")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(data), "\n") {
		rest, ok := strings.CutPrefix(line, `authserver_active_key_info{kid="`)
		if !ok {
			continue
		}
		kid, value, _ := strings.Cut(rest, `"} `)
		if strings.TrimSpace(value) == "1" {
			return kid, nil
		}
	}
	return "", fmt.Errorf("%s reports no active key", p.Name)
}

// TestE2E_RotationsNeverRejectAValidToken rotates the keys three times while a client keeps
// verifying fresh and older tokens through the Service, then keeps verifying until every token
// of the first key has expired.
//
// The CRD's minimum rotationInterval is 1h, so the test asks for each rotation with the
// rotate annotation, the operator's on-demand path. The operator still promotes a next key
// only once it has been published for spec.signingKeys.minPublishTime (minKeyPublishTime in
// this suite), and each request follows the previous rotation at once, so every rotation
// after the first waits for a next key published moments before. The client signs with the
// Secret's active key the moment the operator writes it, before any issuer pod has it: the
// earliest a token of a new key can exist.
func TestE2E_RotationsNeverRejectAValidToken(t *testing.T) {
	t.Parallel()
	key := createReady(t, "rotation", func(as *authv1alpha1.AuthService) {
		as.Spec.Tokens.MaxLifetime = metav1.Duration{Duration: time.Minute}
		as.Spec.Tokens.Leeway = metav1.Duration{Duration: 5 * time.Second}
		as.Spec.SigningKeys.RotationInterval = metav1.Duration{Duration: time.Hour}
		as.Spec.SigningKeys.MinPublishTime = &metav1.Duration{Duration: minKeyPublishTime}
	})
	ctx := context.Background()
	url := serverURL(t, key)
	pods := readyServerPods(t, key, appVerifier)
	if len(pods) != 2 {
		t.Fatalf("want 2 auth-server pods, got %d", len(pods))
	}
	issuers := readyServerPods(t, key, appIssuer)
	if len(issuers) != 2 {
		t.Fatalf("want 2 issuer pods, got %d", len(issuers))
	}
	vc := newVerifyClient(url, liveMinter(key), time.Minute)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		vc.run(stop)
	}()
	stopClient := sync.OnceFunc(func() {
		close(stop)
		wg.Wait()
	})
	defer stopClient()

	kids := []string{getAuthService(t, key).Status.ActiveKeyID}
	started := time.Now()
	for round := 1; round <= 3; round++ {
		prev := kids[len(kids)-1]
		// Rotations follow each other in seconds now, so each one waits until the client
		// holds tokens of the key about to retire.
		poll.Until(t, 30*time.Second, fmt.Sprintf("the client signs with %s", prev), func() error {
			vc.mu.Lock()
			defer vc.mu.Unlock()
			if vc.mintedBy[prev] < 5 {
				return fmt.Errorf("%d tokens minted with %s", vc.mintedBy[prev], prev)
			}
			return nil
		})
		requested := time.Now()
		as := getAuthService(t, key)
		patch := client.MergeFrom(as.DeepCopy())
		if as.Annotations == nil {
			as.Annotations = map[string]string{}
		}
		as.Annotations[authv1alpha1.RotateAnnotation] = fmt.Sprintf("e2e-%d-%d", round, time.Now().UnixNano())
		if err := kube.Patch(ctx, as, patch); err != nil {
			t.Fatal(err)
		}
		var active string
		poll.Until(t, minKeyPublishTime+rotationMargin, fmt.Sprintf("rotation %d reaches every pod", round), func() error {
			active = getAuthService(t, key).Status.ActiveKeyID
			if active == "" || active == prev {
				return fmt.Errorf("status.activeKeyID still %s", active)
			}
			// The verifiers' public projection and the issuers' Secret alike.
			for _, p := range append(append([]serverPod(nil), pods...), issuers...) {
				got, err := activeKidOf(p)
				if err != nil {
					return err
				}
				if got != active {
					return fmt.Errorf("pod %s still has active key %s", p.Name, got)
				}
			}
			return nil
		})
		kids = append(kids, active)
		published := publishedBeforeSigning(t, getAuthService(t, key), active)
		if published < minKeyPublishTime {
			t.Errorf("key %s signs after being published for %s, less than spec.signingKeys.minPublishTime=%s", active, published, minKeyPublishTime)
		}
		t.Logf("rotation %d: %s -> %s, on every pod %s after the request; published %s before it signed", round, prev, active, time.Since(requested).Round(100*time.Millisecond), published)

		// A token the previous key signed keeps verifying on every pod after the rotation.
		vc.mu.Lock()
		old, ok := vc.newest[prev]
		vc.mu.Unlock()
		if !ok {
			t.Fatalf("the client minted no token with key %s", prev)
		}
		for _, p := range pods {
			if r, err := call(http.MethodGet, p.URL+"/auth/verify", old.tok); err != nil || r.code != http.StatusOK {
				t.Fatalf("a token of the retired key %s (expires %s) on %s: %d %s %v", prev, old.expires.Format(time.TimeOnly), p.Name, r.code, r.body, err)
			}
		}
		poll.Until(t, 10*time.Second, "fresh tokens carry the new kid", func() error {
			vc.mu.Lock()
			defer vc.mu.Unlock()
			if vc.lastKid != active {
				return fmt.Errorf("newest token has kid %s", vc.lastKid)
			}
			return nil
		})
	}
	// Tokens of the first key keep verifying until they expire: the client drops a token only
	// two seconds before its expiry, and its oldest ones are those of the first key.
	vc.mu.Lock()
	first := vc.newest[kids[0]]
	vc.mu.Unlock()
	if wait := time.Until(first.expires); wait > 0 {
		t.Logf("verifying until the last token of %s expires at %s (in %s)", kids[0], first.expires.Format(time.TimeOnly), wait.Round(time.Second))
		time.Sleep(wait)
	} else {
		time.Sleep(2 * time.Second)
	}
	stopClient()
	t.Logf("three rotations and the expiry of the first key's tokens in %s", time.Since(started).Round(100*time.Millisecond))

	vc.mu.Lock()
	defer vc.mu.Unlock()
	t.Logf("%d verify calls, tokens minted per key: %v", vc.calls, vc.mintedBy)
	for _, kid := range kids {
		if vc.mintedBy[kid] == 0 {
			t.Errorf("no token was minted with key %s", kid)
		}
	}
	if len(vc.mintFails) > 0 {
		t.Errorf("%d tokens could not be minted from the signing-key Secret; first: %s", len(vc.mintFails), vc.mintFails[0])
	}
	if len(vc.rejected) > 0 {
		t.Fatalf("%d of %d verify calls rejected a valid token; first: %s", len(vc.rejected), vc.calls, vc.rejected[0])
	}
}

// publishedBeforeSigning is how long the key kid was published before it started signing, as
// the AuthService's status records it (to the second, both times truncated alike).
func publishedBeforeSigning(t *testing.T, as *authv1alpha1.AuthService, kid string) time.Duration {
	t.Helper()
	for _, k := range as.Status.Keys {
		if k.KeyID == kid && k.ActivatedAt != nil {
			return k.ActivatedAt.Sub(k.CreatedAt.Time)
		}
	}
	t.Fatalf("status.keys has no activated key %s: %+v", kid, as.Status.Keys)
	return 0
}
