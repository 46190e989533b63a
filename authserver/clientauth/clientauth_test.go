package clientauth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	authv1client "k8s.io/client-go/kubernetes/typed/authentication/v1"
	"k8s.io/client-go/rest"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/hiringo/auth-operator/authserver/clientauth"
)

const audience = "http://auth-issuer.test.svc"

// The one real kube-apiserver the tests that review tokens share, started by the first
// that needs it: kc is a client of it, restCfg its config.
var (
	kubeOnce sync.Once
	kubeEnv  *envtest.Environment
	kc       kubernetes.Interface
	restCfg  *rest.Config
	kubeErr  error
)

// kube returns the shared API server's client, starting it on first use. Under -short
// the test is skipped: the unit tier starts no process.
func kube(t testing.TB) kubernetes.Interface {
	t.Helper()
	if testing.Short() {
		t.Skip("starts kube-apiserver: not in -short")
	}
	kubeOnce.Do(func() {
		if os.Getenv("KUBEBUILDER_ASSETS") == "" {
			abs, _ := filepath.Abs("../../bin")
			os.Setenv("KUBEBUILDER_ASSETS", abs)
		}
		kubeEnv = &envtest.Environment{}
		if restCfg, kubeErr = kubeEnv.Start(); kubeErr != nil {
			return
		}
		if kc, kubeErr = kubernetes.NewForConfig(restCfg); kubeErr == nil {
			_, kubeErr = kc.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "login"}}, metav1.CreateOptions{})
		}
	})
	if kubeErr != nil {
		t.Fatal(kubeErr)
	}
	return kc
}

func TestMain(m *testing.M) {
	code := m.Run()
	if kubeEnv != nil && restCfg != nil {
		_ = kubeEnv.Stop()
	}
	os.Exit(code)
}

// countingReviews passes TokenReviews to the real API server and counts them.
type countingReviews struct {
	authv1client.TokenReviewInterface
	n atomic.Int32
}

func (c *countingReviews) Create(ctx context.Context, tr *authenticationv1.TokenReview, opts metav1.CreateOptions) (*authenticationv1.TokenReview, error) {
	c.n.Add(1)
	return c.TokenReviewInterface.Create(ctx, tr, opts)
}

func newReviews(t testing.TB) *countingReviews {
	return &countingReviews{TokenReviewInterface: kube(t).AuthenticationV1().TokenReviews()}
}

func clusterKeys(t testing.TB) *clientauth.ClusterKeys {
	return &clientauth.ClusterKeys{Client: kube(t).Discovery().RESTClient()}
}

// tokenOf is a real token of ServiceAccount login/name for aud, created on the API server.
func tokenOf(t *testing.T, name, aud string) (string, time.Time) {
	t.Helper()
	ctx := context.Background()
	_, _ = kube(t).CoreV1().ServiceAccounts("login").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	tr, err := kc.CoreV1().ServiceAccounts("login").CreateToken(ctx, name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{Audiences: []string{aud}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return tr.Status.Token, tr.Status.ExpirationTimestamp.Time
}

var loginService = clientauth.ServiceAccount{Namespace: "login", Name: "login-service"}

// TestAuthorize_ReviewsThroughTheAPIServerAndCachesBoundedly runs against a real
// kube-apiserver: listed ServiceAccounts pass after one review each, repeated calls are
// answered from a cache of bounded size (an evicted answer is reviewed again).
func TestAuthorize_ReviewsThroughTheAPIServerAndCachesBoundedly(t *testing.T) {
	ctx := context.Background()
	reviews := newReviews(t)
	a := clientauth.New(clientauth.Config{
		Reviews: reviews, Audience: audience, CacheSize: 2, Keys: clusterKeys(t),
		Clients: []clientauth.ServiceAccount{loginService, {Namespace: "login", Name: "cli"}, {Namespace: "login", Name: "batch"}},
	})
	allowed, _ := tokenOf(t, "login-service", audience)
	for range 3 {
		sa, err := a.Authorize(ctx, allowed)
		if err != nil || sa != loginService {
			t.Fatalf("allowed caller: %v, %v", sa, err)
		}
	}
	if n := reviews.n.Load(); n != 1 {
		t.Fatalf("three calls with one token made %d reviews, want 1", n)
	}
	for _, name := range []string{"cli", "batch"} {
		tok, _ := tokenOf(t, name, audience)
		if _, err := a.Authorize(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.Authorize(ctx, allowed); err != nil || reviews.n.Load() != 4 {
		t.Fatalf("after two other tokens filled the 2-entry cache: %v, %d reviews, want the allowed one reviewed again (4)", err, reviews.n.Load())
	}
}

// TestAuthorize_RefusesWhatCannotBeAListedServiceAccountTokenWithoutAReview: each bearer
// that cannot be a token of this cluster's ServiceAccounts for a listed client, for the
// audience, is refused before any TokenReview.
func TestAuthorize_RefusesWhatCannotBeAListedServiceAccountTokenWithoutAReview(t *testing.T) {
	ctx := context.Background()
	allowed, _ := tokenOf(t, "login-service", audience)
	unlisted, _ := tokenOf(t, "intruder", audience)
	otherAudience, _ := tokenOf(t, "login-service", "elsewhere")
	forged := forge(t, "https://kubernetes.default.svc.cluster.local", "system:serviceaccount:login:login-service", audience, time.Now().Add(time.Hour))
	withIssuerOf := func(iss string) string {
		return forge(t, iss, "system:serviceaccount:login:login-service", audience, time.Now().Add(time.Hour))
	}
	for _, tc := range []struct {
		name, bearer string
		want         error
	}{
		{"not a JWT", "junk-" + allowed[:20], clientauth.ErrUnauthenticated},
		{"a JWT with the signature cut off", allowed[:len(allowed)-20], clientauth.ErrUnauthenticated},
		{"an unsigned JWT", "eyJhbGciOiJub25lIn0." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"system:serviceaccount:login:login-service","aud":["`+audience+`"],"exp":9999999999}`)) + ".", clientauth.ErrUnauthenticated},
		{"a token for another audience", otherAudience, clientauth.ErrUnauthenticated},
		{"a token of an unlisted ServiceAccount", unlisted, clientauth.ErrForbidden},
		{"a token signed by another key", forged, clientauth.ErrUnauthenticated},
		{"a token of another issuer signed by another key", withIssuerOf("https://evil.example.com"), clientauth.ErrUnauthenticated},
		{"an expired token", forge(t, "x", "system:serviceaccount:login:login-service", audience, time.Now().Add(-time.Hour)), clientauth.ErrUnauthenticated},
		{"a token of a user", forge(t, "x", "alice", audience, time.Now().Add(time.Hour)), clientauth.ErrForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reviews := newReviews(t)
			a := clientauth.New(clientauth.Config{Reviews: reviews, Audience: audience, Keys: clusterKeys(t), Clients: []clientauth.ServiceAccount{loginService}})
			if _, err := a.Authorize(ctx, tc.bearer); !errors.Is(err, tc.want) {
				t.Fatalf("Authorize = %v, want %v", err, tc.want)
			}
			if n := reviews.n.Load(); n != 0 {
				t.Fatalf("%d TokenReviews, want none", n)
			}
			if sa, err := a.Authorize(ctx, allowed); err != nil || sa != loginService || reviews.n.Load() != 1 {
				t.Fatalf("the listed caller afterwards: %v %v after %d reviews", sa, err, reviews.n.Load())
			}
		})
	}
}

// TestAuthorize_ListedCallerGetsThroughAJunkFlood floods the Authenticator, against a real
// kube-apiserver, with distinct junk bearers from many goroutines (made-up strings, JWTs
// forged with the cluster's claims, real tokens of an unlisted ServiceAccount) while the
// listed caller presents a fresh token: it is authorized within a request's time, and the
// junk costs no TokenReview.
func TestAuthorize_ListedCallerGetsThroughAJunkFlood(t *testing.T) {
	// The reviews go through a client with client-go's default limits (5 per second, bursts
	// of 10), as an issuer's would.
	kube(t)
	limited := rest.CopyConfig(restCfg)
	limited.QPS, limited.Burst = 5, 10
	lc, err := kubernetes.NewForConfig(limited)
	if err != nil {
		t.Fatal(err)
	}
	reviews := &countingReviews{TokenReviewInterface: lc.AuthenticationV1().TokenReviews()}
	a := clientauth.New(clientauth.Config{Reviews: reviews, Audience: audience, Keys: clusterKeys(t), Clients: []clientauth.ServiceAccount{loginService}})
	var unlisted []string
	for range 5 {
		tok, _ := tokenOf(t, "intruder", audience)
		unlisted = append(unlisted, tok)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithTimeout(context.Background(), 3*time.Second)
	defer stop()
	var junk atomic.Int64
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				var bearer string
				switch i % 3 {
				case 0:
					bearer = fmt.Sprintf("junk-%d-%d", g, i)
				case 1:
					bearer = forgeWith(t, key, "", "system:serviceaccount:login:login-service", audience, time.Now().Add(time.Duration(i)*time.Second))
				default:
					bearer = unlisted[i%len(unlisted)]
				}
				reqCtx, done := context.WithTimeout(ctx, time.Second)
				if _, err := a.Authorize(reqCtx, bearer); err == nil {
					t.Errorf("junk %d authorized", i)
				}
				done()
				junk.Add(1)
			}
		})
	}
	time.Sleep(500 * time.Millisecond)
	for range 3 {
		tok, _ := tokenOf(t, "login-service", audience)
		reqCtx, done := context.WithTimeout(context.Background(), 2*time.Second)
		sa, err := a.Authorize(reqCtx, tok)
		done()
		if err != nil || sa != loginService {
			t.Errorf("the listed caller during the flood: %v, %v", sa, err)
		}
	}
	wg.Wait()
	t.Logf("%d junk requests, %d TokenReviews", junk.Load(), reviews.n.Load())
	if junk.Load() < 1000 {
		t.Fatalf("only %d junk requests: not a flood", junk.Load())
	}
	if n := reviews.n.Load(); n != 3 {
		t.Errorf("%d TokenReviews, want 3 (the listed caller's tokens only)", n)
	}
}

// TestAuthorize_NoAnswerOutlivesTheToken: with a cache that would keep answers for a
// minute, a token the API server accepted is refused once its exp has passed, cached or
// not.
func TestAuthorize_NoAnswerOutlivesTheToken(t *testing.T) {
	ctx := context.Background()
	tok, exp := tokenOf(t, "login-service", audience)
	clock := clocktesting.NewFakePassiveClock(exp.Add(-30 * time.Second))
	reviews := newReviews(t)
	a := clientauth.New(clientauth.Config{Reviews: reviews, Audience: audience, Keys: clusterKeys(t), Clients: []clientauth.ServiceAccount{loginService}, Clock: clock})
	if _, err := a.Authorize(ctx, tok); err != nil {
		t.Fatalf("30s before exp: %v", err)
	}
	clock.SetTime(exp.Add(time.Second))
	if sa, err := a.Authorize(ctx, tok); err == nil {
		t.Fatalf("1s after exp the cached answer still authorizes %s", sa)
	}
}

// TestParseClients_NamesTheBadEntry checks the --issuance-clients format.
func TestParseClients_NamesTheBadEntry(t *testing.T) {
	got, err := clientauth.ParseClients([]string{"login/login-service", " ops/cli "})
	if err != nil || len(got) != 2 || got[1] != (clientauth.ServiceAccount{Namespace: "ops", Name: "cli"}) {
		t.Fatalf("ParseClients = %v, %v", got, err)
	}
	for _, bad := range []string{"login", "Login/x", "login/", "/x"} {
		if _, err := clientauth.ParseClients([]string{bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestAuthorize_ConcurrentCallersShareOneReview: callers that present the same
// uncached token at once (a busy login service when its cached answer expires) make
// one TokenReview between them, and all get its answer.
func TestAuthorize_ConcurrentCallersShareOneReview(t *testing.T) {
	ctx := context.Background()
	tok, _ := tokenOf(t, "login-service", audience)
	reviews := newReviews(t)
	a := clientauth.New(clientauth.Config{Reviews: reviews, Audience: audience, Keys: clusterKeys(t), Clients: []clientauth.ServiceAccount{loginService}})
	const callers = 16
	start := make(chan struct{})
	errs := make(chan error, callers)
	for range callers {
		go func() {
			<-start
			sa, err := a.Authorize(ctx, tok)
			if err == nil && sa != loginService {
				err = fmt.Errorf("authorized as %s", sa)
			}
			errs <- err
		}()
	}
	close(start)
	for range callers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if n := reviews.n.Load(); n != 1 {
		t.Fatalf("%d concurrent calls with one token made %d reviews, want 1", callers, n)
	}
}

// forge signs a token with a fresh key that is not the cluster's.
func forge(t *testing.T, iss, sub, aud string, exp time.Time) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return forgeWith(t, key, iss, sub, aud, exp)
}

// forgeWith signs a token with key; an empty iss is the cluster's (read from discovery).
func forgeWith(t *testing.T, key *ecdsa.PrivateKey, iss, sub, aud string, exp time.Time) string {
	if iss == "" {
		iss = clusterIssuer(t)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "made-up"))
	if err != nil {
		t.Error(err)
		return ""
	}
	tok, err := jwt.Signed(signer).Claims(jwt.Claims{
		Issuer: iss, Subject: sub, Audience: jwt.Audience{aud},
		Expiry: jwt.NewNumericDate(exp), IssuedAt: jwt.NewNumericDate(time.Now()), NotBefore: jwt.NewNumericDate(time.Now()),
	}).Serialize()
	if err != nil {
		t.Error(err)
	}
	return tok
}

var clusterIssuerOnce = sync.OnceValues(func() (string, error) {
	raw, err := kc.Discovery().RESTClient().Get().AbsPath("/.well-known/openid-configuration").DoRaw(context.Background())
	if err != nil {
		return "", err
	}
	var doc struct{ Issuer string }
	err = jsonUnmarshal(raw, &doc)
	return doc.Issuer, err
})

func clusterIssuer(t *testing.T) string {
	kube(t)
	iss, err := clusterIssuerOnce()
	if err != nil {
		t.Error(err)
	}
	return iss
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
