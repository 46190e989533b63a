package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// Who obtains tokens in the issuance run, who introspects them in the introspection
// runs, and for which audience both request their ServiceAccount tokens.
const (
	loginNamespace        = "login"
	loginServiceAccount   = "login-service"
	gatewayNamespace      = "edge"
	gatewayServiceAccount = "gateway"
	issuerAudience        = "http://auth-issuer.auth.svc"
)

// kubeAPI is the real kube-apiserver (and etcd) the issuer reviews its callers' tokens
// with, as in a cluster.
type kubeAPI struct {
	env *envtest.Environment
	// kubeconfig is a file the issuer connects with, as a user allowed TokenReviews.
	kubeconfig string
	// loginToken is the login service's ServiceAccount token for issuerAudience, and
	// gatewayToken the introspecting gateway's.
	loginToken, gatewayToken string
}

// startKube starts envtest's control plane from assetsDir and makes the login
// service's ServiceAccount and token.
func startKube(ctx context.Context, assetsDir, workDir string) (*kubeAPI, error) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		abs, err := filepath.Abs(assetsDir)
		if err != nil {
			return nil, err
		}
		if err := os.Setenv("KUBEBUILDER_ASSETS", abs); err != nil {
			return nil, err
		}
	}
	k := &kubeAPI{env: &envtest.Environment{}}
	cfg, err := k.env.Start()
	if err != nil {
		return nil, fmt.Errorf("starting kube-apiserver and etcd (make controlplane builds them): %w", err)
	}
	fail := func(err error) (*kubeAPI, error) {
		_ = k.env.Stop()
		return nil, err
	}
	user, err := k.env.AddUser(envtest.User{Name: "issuer", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return fail(err)
	}
	kc, err := user.KubeConfig()
	if err != nil {
		return fail(err)
	}
	k.kubeconfig = filepath.Join(workDir, "kubeconfig")
	if err := os.WriteFile(k.kubeconfig, kc, 0o600); err != nil {
		return fail(err)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fail(err)
	}
	for _, sa := range []struct {
		namespace, name string
		token           *string
	}{{loginNamespace, loginServiceAccount, &k.loginToken}, {gatewayNamespace, gatewayServiceAccount, &k.gatewayToken}} {
		if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: sa.namespace}}, metav1.CreateOptions{}); err != nil {
			return fail(err)
		}
		if _, err := client.CoreV1().ServiceAccounts(sa.namespace).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa.name}}, metav1.CreateOptions{}); err != nil {
			return fail(err)
		}
		tr, err := client.CoreV1().ServiceAccounts(sa.namespace).CreateToken(ctx, sa.name, &authenticationv1.TokenRequest{
			Spec: authenticationv1.TokenRequestSpec{Audiences: []string{issuerAudience}},
		}, metav1.CreateOptions{})
		if err != nil {
			return fail(err)
		}
		*sa.token = tr.Status.Token
	}
	return k, nil
}

func (k *kubeAPI) stop() { _ = k.env.Stop() }
