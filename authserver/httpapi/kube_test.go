package httpapi_test

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// The issuer tests share one real kube-apiserver (envtest), started by the first
// test that needs it: it reviews the ServiceAccount tokens it issues.
var (
	kubeOnce sync.Once
	kubeEnv  *envtest.Environment
	kubeCfg  *rest.Config
	kubeErr  error
)

// kube returns a client of the package's API server, starting it on first use.
func kube(t testing.TB) (kubernetes.Interface, *rest.Config) {
	t.Helper()
	skipProcesses(t, "kube-apiserver")
	kubeOnce.Do(func() {
		if os.Getenv("KUBEBUILDER_ASSETS") == "" {
			if abs, err := filepath.Abs("../../bin"); err == nil {
				os.Setenv("KUBEBUILDER_ASSETS", abs)
			}
		}
		kubeEnv = &envtest.Environment{}
		kubeCfg, kubeErr = kubeEnv.Start()
	})
	if kubeErr != nil {
		t.Fatalf("starting envtest (KUBEBUILDER_ASSETS=%s): %v", os.Getenv("KUBEBUILDER_ASSETS"), kubeErr)
	}
	c, err := kubernetes.NewForConfig(kubeCfg)
	if err != nil {
		t.Fatal(err)
	}
	return c, kubeCfg
}

func stopKube() {
	if kubeEnv != nil && kubeCfg != nil {
		_ = kubeEnv.Stop()
	}
}

// serviceAccountToken creates namespace/name (if missing) and returns a projected
// token of it for audience, from the TokenRequest API.
func serviceAccountToken(t testing.TB, c kubernetes.Interface, namespace, name, audience string) string {
	t.Helper()
	ctx := context.Background()
	_, _ = c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}, metav1.CreateOptions{})
	_, _ = c.CoreV1().ServiceAccounts(namespace).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	ttl := int64(600)
	tr, err := c.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{Audiences: []string{audience}, ExpirationSeconds: &ttl},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("TokenRequest for %s/%s: %v", namespace, name, err)
	}
	return tr.Status.Token
}
