package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/hiringo/auth-operator/authserver/keyfiles"
	"github.com/hiringo/auth-operator/internal/testutil/loopback"
	"github.com/hiringo/auth-operator/internal/testutil/poll"
	"github.com/hiringo/auth-operator/internal/testutil/redistest"
)

// TestServe_IssuerAndVerifierRoles runs both roles of the binary against a real
// kube-apiserver and Redis, as the operator's two Deployments: a login service's
// ServiceAccount obtains a session from the issuer, the verifier accepts its access
// token, a refresh rotates it, a logout on the verifier ends the login and the refresh
// token with it. Each step is a case of its own; a step that fails ends the run, as the
// next ones build on it.
func TestServe_IssuerAndVerifierRoles(t *testing.T) {
	f := startRoles(t)
	var login, pair map[string]any
	runSteps(t, []step{
		{"the issuer signs a session for a listed ServiceAccount", func(t *testing.T) {
			var status int
			status, login = f.call(t, http.MethodPost, f.issuer+"/auth/token", f.saToken, `{"id":"u-7","email":"u7@example.com","name":"U"}`)
			if status != http.StatusOK || login["token"] == nil {
				t.Fatalf("issue: %d %v", status, login)
			}
		}},
		{"the verifier accepts its access token", func(t *testing.T) {
			if status, _ := f.call(t, http.MethodGet, f.verifier+"/auth/verify", login["token"].(string), ""); status != http.StatusOK {
				t.Fatalf("verify of the issued token: %d", status)
			}
		}},
		{"a refresh rotates the session", func(t *testing.T) {
			var status int
			status, pair = f.call(t, http.MethodGet, f.issuer+"/auth/refresh", login["refresh_token"].(string), "")
			if status != http.StatusCreated {
				t.Fatalf("refresh: %d %v", status, pair)
			}
		}},
		{"the verifier refuses the rotated stamp within a second", func(t *testing.T) {
			// The verifier cached the first verify; the issuer's revocation of the rotated
			// stamp reaches that cache over pub/sub (docs/verify-cache.md bounds the
			// staleness by its delivery), so the answer turns 401 within a second, not
			// necessarily at once.
			poll.Until(t, time.Second, "the access token of the rotated stamp to be refused", func() error {
				if status, _ := f.call(t, http.MethodGet, f.verifier+"/auth/verify", login["token"].(string), ""); status != http.StatusUnauthorized {
					return fmt.Errorf("verify answered %d, want 401", status)
				}
				return nil
			})
		}},
		{"a logout on the verifier ends the refresh token too", func(t *testing.T) {
			if status, _ := f.call(t, http.MethodPost, f.verifier+"/auth/logout", pair["token"].(string), ""); status != http.StatusOK {
				t.Fatalf("logout: %d", status)
			}
			if status, _ := f.call(t, http.MethodGet, f.issuer+"/auth/refresh", pair["refresh_token"].(string), ""); status != http.StatusUnauthorized {
				t.Fatalf("refresh after the logout: %d, want 401", status)
			}
		}},
		{"the verifier serves no issuance", func(t *testing.T) {
			if status, _ := f.call(t, http.MethodPost, f.verifier+"/auth/token", f.saToken, `{"id":"u-7"}`); status != http.StatusNotFound {
				t.Fatalf("issuance on the verifier: %d, want 404", status)
			}
		}},
		{"the verifier serves discovery", func(t *testing.T) {
			if status, doc := f.call(t, http.MethodGet, f.verifier+"/.well-known/openid-configuration", "", ""); status != http.StatusOK || doc != nil {
				t.Fatalf("discovery: %d %v", status, doc)
			}
		}},
	})
}

// rolesFixture is a verifier and an issuer serving one key set and Redis, the issuer
// following its key Secret through a real kube-apiserver.
type rolesFixture struct {
	verifier, issuer string
	// saToken is the login service's ServiceAccount token for the issuer's audience.
	saToken string
}

// startRoles starts the fixture; both servers stop when the test ends.
func startRoles(t *testing.T) *rolesFixture {
	t.Helper()
	if testing.Short() {
		t.Skip("starts kube-apiserver and redis-server: not in -short")
	}
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
	user, err := env.AddUser(envtest.User{Name: "issuer", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	kubeconfigFile := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kubeconfigFile, kubeconfig, 0o600); err != nil {
		t.Fatal(err)
	}
	kc, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, ns := range []string{"login", "auth"} {
		if _, err := kc.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := kc.CoreV1().ServiceAccounts("login").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "login-service"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	const audience = "http://auth-issuer.auth.svc"
	tr, err := kc.CoreV1().ServiceAccounts("login").CreateToken(ctx, "login-service", &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{Audiences: []string{audience}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	keys := filepath.Join(dir, "keys")
	if _, err := run(t, ctx, "keys", "generate", "--dir", keys); err != nil {
		t.Fatal(err)
	}
	set, err := keyfiles.ReadDir(keys)
	if err != nil {
		t.Fatal(err)
	}
	files, err := keyfiles.Encode(set)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kc.CoreV1().Secrets("auth").Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "auth-signing-keys"}, Data: files}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	redis := redistest.Start(t, redistest.Options{})
	common := []string{"--keys-dir", keys, "--redis-addrs", redis.Addr, "--log-level", "error", "--issuer", "http://auth-authserver.auth.svc",
		"--shutdown-delay", "0s", "--shutdown-timeout", "2s"}
	verifier, issuer := "http://"+loopback.FreeAddr(t), "http://"+loopback.FreeAddr(t)
	verifierAdmin, issuerAdmin := loopback.FreeAddr(t), loopback.FreeAddr(t)
	serveCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 2)
	go func() {
		_, err := run(t, serveCtx, append([]string{"serve", "--role", "verifier", "--listen", strings.TrimPrefix(verifier, "http://"), "--admin-listen", verifierAdmin}, common...)...)
		done <- err
	}()
	go func() {
		_, err := run(t, serveCtx, append([]string{"serve", "--role", "issuer", "--listen", strings.TrimPrefix(issuer, "http://"), "--admin-listen", issuerAdmin,
			"--kubeconfig", kubeconfigFile, "--client-audience", audience, "--issuance-clients", "login/login-service",
			"--keys-secret", "auth-signing-keys", "--namespace", "auth"}, common...)...)
		done <- err
	}()
	t.Cleanup(func() {
		cancel()
		for range 2 {
			if err := <-done; err != nil {
				t.Errorf("serve: %v", err)
			}
		}
	})
	waitReady(t, "http://"+verifierAdmin+"/readyz", done)
	waitReady(t, "http://"+issuerAdmin+"/readyz", done)

	return &rolesFixture{verifier: verifier, issuer: issuer, saToken: tr.Status.Token}
}

// call sends one request and returns its status and envelope payload.
func (f *rolesFixture) call(t *testing.T, method, url, bearer, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+bearer)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var env struct {
		Payload map[string]any `json:"payload"`
	}
	_ = json.Unmarshal(raw, &env)
	return resp.StatusCode, env.Payload
}
