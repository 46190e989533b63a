package clientauth_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	authv1client "k8s.io/client-go/kubernetes/typed/authentication/v1"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/hiringo/auth-operator/authserver/clientauth"
)

const audience = "http://auth-issuer.test.svc"

// countingReviews passes TokenReviews to the real API server and counts them.
type countingReviews struct {
	authv1client.TokenReviewInterface
	n atomic.Int32
}

func (c *countingReviews) Create(ctx context.Context, tr *authenticationv1.TokenReview, opts metav1.CreateOptions) (*authenticationv1.TokenReview, error) {
	c.n.Add(1)
	return c.TokenReviewInterface.Create(ctx, tr, opts)
}

// TestAuthorize_ReviewsThroughTheAPIServerAndCachesBoundedly runs against a real
// kube-apiserver: the allowed ServiceAccount passes, another is forbidden, a token for
// another audience is unauthenticated; each answer is cached (a repeated call makes no
// review) in a cache of bounded size (an evicted answer is reviewed again).
func TestAuthorize_ReviewsThroughTheAPIServerAndCachesBoundedly(t *testing.T) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		abs, _ := filepath.Abs("../../bin")
		t.Setenv("KUBEBUILDER_ASSETS", abs)
	}
	env := &envtest.Environment{}
	cfg, err := env.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	kc, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := kc.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "login"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tokenOf := func(name, aud string) string {
		_, _ = kc.CoreV1().ServiceAccounts("login").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
		tr, err := kc.CoreV1().ServiceAccounts("login").CreateToken(ctx, name, &authenticationv1.TokenRequest{
			Spec: authenticationv1.TokenRequestSpec{Audiences: []string{aud}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return tr.Status.Token
	}
	reviews := &countingReviews{TokenReviewInterface: kc.AuthenticationV1().TokenReviews()}
	a := clientauth.New(clientauth.Config{
		Reviews: reviews, Audience: audience, CacheSize: 2,
		Clients: []clientauth.ServiceAccount{{Namespace: "login", Name: "login-service"}},
	})
	allowed, other, wrongAud := tokenOf("login-service", audience), tokenOf("intruder", audience), tokenOf("login-service", "elsewhere")
	for range 3 {
		sa, err := a.Authorize(ctx, allowed)
		if err != nil || sa.String() != "login/login-service" {
			t.Fatalf("allowed caller: %v, %v", sa, err)
		}
	}
	if n := reviews.n.Load(); n != 1 {
		t.Fatalf("three calls with one token made %d reviews, want 1", n)
	}
	if _, err := a.Authorize(ctx, other); !errors.Is(err, clientauth.ErrForbidden) {
		t.Fatalf("another ServiceAccount: %v, want ErrForbidden", err)
	}
	if _, err := a.Authorize(ctx, wrongAud); !errors.Is(err, clientauth.ErrUnauthenticated) {
		t.Fatalf("a token for another audience: %v, want ErrUnauthenticated", err)
	}
	if _, err := a.Authorize(ctx, wrongAud); !errors.Is(err, clientauth.ErrUnauthenticated) || reviews.n.Load() != 3 {
		t.Fatalf("a repeated refusal: %v after %d reviews, want it cached (3)", err, reviews.n.Load())
	}
	if _, err := a.Authorize(ctx, allowed); err != nil || reviews.n.Load() != 4 {
		t.Fatalf("after two other tokens filled the 2-entry cache: %v, %d reviews, want the allowed one reviewed again (4)", err, reviews.n.Load())
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
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		abs, _ := filepath.Abs("../../bin")
		t.Setenv("KUBEBUILDER_ASSETS", abs)
	}
	env := &envtest.Environment{}
	cfg, err := env.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	kc, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := kc.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "login"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := kc.CoreV1().ServiceAccounts("login").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "login-service"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tr, err := kc.CoreV1().ServiceAccounts("login").CreateToken(ctx, "login-service", &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{Audiences: []string{audience}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	reviews := &countingReviews{TokenReviewInterface: kc.AuthenticationV1().TokenReviews()}
	a := clientauth.New(clientauth.Config{
		Reviews: reviews, Audience: audience,
		Clients: []clientauth.ServiceAccount{{Namespace: "login", Name: "login-service"}},
	})
	const callers = 16
	start := make(chan struct{})
	errs := make(chan error, callers)
	for range callers {
		go func() {
			<-start
			sa, err := a.Authorize(ctx, tr.Status.Token)
			if err == nil && sa.String() != "login/login-service" {
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
