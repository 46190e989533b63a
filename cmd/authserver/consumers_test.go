package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/golang-jwt/jwt/v5"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/hiringo/auth-operator/authserver/keyfiles"
	"github.com/hiringo/auth-operator/authserver/token"
	"github.com/hiringo/auth-operator/internal/testutil/loopback"
	"github.com/hiringo/auth-operator/internal/testutil/poll"
	"github.com/hiringo/auth-operator/internal/testutil/redistest"
	"github.com/hiringo/auth-operator/internal/testutil/tlstest"
)

// consumerAudience is the audience of the AuthService's tokens in the consumer tests,
// and the one the kube-apiserver's JWT authenticator accepts.
const consumerAudience = "api.example.com"

// consumerStack is both roles of the auth server serving TLS on loopback with a
// self-signed CA (as from a kubernetes.io/tls Secret), beside a real kube-apiserver whose
// structured authentication trusts the verifier's https issuer for consumerAudience.
type consumerStack struct {
	issuerURL, tokenService string
	ca                      *tlstest.CA
	keys                    string
	kubectl                 []string
	login                   string
	client                  *http.Client
}

// authenticationConfig is the kube-apiserver's AuthenticationConfiguration: one JWT
// issuer (the verifier's https URL, its CA inline), the audience, username from sub.
func authenticationConfig(issuer string, caPEM []byte) string {
	indented := "      " + strings.ReplaceAll(strings.TrimSpace(string(caPEM)), "\n", "\n      ")
	return `apiVersion: apiserver.config.k8s.io/v1
kind: AuthenticationConfiguration
jwt:
- issuer:
    url: ` + issuer + `
    audiences: [` + consumerAudience + `]
    certificateAuthority: |
` + indented + `
  claimMappings:
    username:
      claim: sub
      prefix: ""
`
}

func newConsumerStack(t *testing.T) *consumerStack {
	t.Helper()
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		abs, _ := filepath.Abs("../../bin")
		t.Setenv("KUBEBUILDER_ASSETS", abs)
	}
	dir := t.TempDir()
	s := &consumerStack{ca: tlstest.NewCA(t), keys: filepath.Join(dir, "keys")}
	if _, err := run(t, context.Background(), "keys", "generate", "--dir", s.keys); err != nil {
		t.Fatal(err)
	}
	verifierAddr, issuerAddr := loopback.FreeAddr(t), loopback.FreeAddr(t)
	s.issuerURL, s.tokenService = "https://"+verifierAddr, "https://"+issuerAddr
	leaf := s.ca.Issue(t, time.Now().Add(time.Hour), "127.0.0.1")
	tlsDir := filepath.Join(dir, "tls")
	writeTLSSecret(t, tlsDir, leaf.CertPEM, leaf.KeyPEM)
	redis := redistest.Start(t, redistest.Options{})
	common := []string{"--keys-dir", s.keys, "--redis-addrs", redis.Addr, "--log-level", "error",
		"--issuer", s.issuerURL, "--audiences", consumerAudience,
		"--tls-cert-file", filepath.Join(tlsDir, "tls.crt"), "--tls-key-file", filepath.Join(tlsDir, "tls.key"),
		"--shutdown-delay", "0s", "--shutdown-timeout", "2s"}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 2)
	servers := 0
	t.Cleanup(func() {
		cancel()
		for range servers {
			if err := <-done; err != nil {
				t.Errorf("serve: %v", err)
			}
		}
	})
	serve := func(args ...string) {
		servers++
		go func() {
			_, err := run(t, ctx, append(append([]string{"serve"}, args...), common...)...)
			done <- err
		}()
	}
	// The verifier first: the API server fetches its discovery document as it starts.
	verifierAdmin := loopback.FreeAddr(t)
	serve("--role", "verifier", "--listen", verifierAddr, "--admin-listen", verifierAdmin, "--token-service-url", s.tokenService)
	waitReady(t, "http://"+verifierAdmin+"/readyz", done)

	authnConfig := filepath.Join(dir, "authentication-config.yaml")
	if err := os.WriteFile(authnConfig, []byte(authenticationConfig(s.issuerURL, s.ca.PEM)), 0o600); err != nil {
		t.Fatal(err)
	}
	env := &envtest.Environment{}
	env.ControlPlane.GetAPIServer().Configure().Set("authentication-config", authnConfig)
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
	kubeconfigFile := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kubeconfigFile, kubeconfig, 0o600); err != nil {
		t.Fatal(err)
	}
	apiCA := filepath.Join(dir, "apiserver-ca.crt")
	if err := os.WriteFile(apiCA, cfg.CAData, 0o600); err != nil {
		t.Fatal(err)
	}
	s.kubectl = []string{filepath.Join(os.Getenv("KUBEBUILDER_ASSETS"), "kubectl"),
		"--kubeconfig", os.DevNull, "--server", cfg.Host, "--certificate-authority", apiCA}

	kc, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kc.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "login"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := kc.CoreV1().ServiceAccounts("login").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "login-service"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tr, err := kc.CoreV1().ServiceAccounts("login").CreateToken(ctx, "login-service", &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{Audiences: []string{s.issuerURL}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s.login = tr.Status.Token
	issuerAdmin := loopback.FreeAddr(t)
	serve("--role", "issuer", "--listen", issuerAddr, "--admin-listen", issuerAdmin, "--kubeconfig", kubeconfigFile,
		"--client-audience", s.issuerURL, "--issuance-clients", "login/login-service")
	waitReady(t, "http://"+issuerAdmin+"/readyz", done)
	s.client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.ca.Pool()}}}
	return s
}

// issue obtains a session for userID from the issuer over TLS: its access and refresh token.
func (s *consumerStack) issue(t *testing.T, userID string) (access, refresh string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.tokenService+"/auth/token", strings.NewReader(`{"id":"`+userID+`","email":"`+userID+`@example.com"}`))
	req.Header.Set("Authorization", "Bearer "+s.login)
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var env struct {
		Payload struct {
			Token        string `json:"token"`
			RefreshToken string `json:"refresh_token"`
		} `json:"payload"`
	}
	body, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(body, &env); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("issuance over TLS: %d %s", resp.StatusCode, body)
	}
	return env.Payload.Token, env.Payload.RefreshToken
}

// signed is a token signed by the issuer's active key with the claims an issued access
// token has, edited: an expired one, or one for another audience.
func (s *consumerStack) signed(t *testing.T, userID string, edit func(*token.Claims)) string {
	t.Helper()
	set, err := keyfiles.ReadDir(s.keys)
	if err != nil {
		t.Fatal(err)
	}
	active, _ := set.Active()
	c := token.NewClaims(token.User{ID: userID}, time.Now(), 10*time.Minute)
	c.Subject, c.Issuer, c.Audience, c.ID = userID, s.issuerURL, jwt.ClaimStrings{consumerAudience}, "jti-"+userID
	edit(&c)
	tok, err := token.Issue(active, c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestConsumers_GoOIDCFromDiscovery: go-oidc, configured from nothing but the https issuer
// URL (discovery, then the JWKS, over TLS with the AuthService's CA), verifies an issued
// access token for the AuthService's audience and reads sub, client_id and sid; it refuses
// the refresh token of the same login (signed by a key the JWKS never lists), an expired
// token and a token for another audience.
func TestConsumers_GoOIDCFromDiscovery(t *testing.T) {
	s := newConsumerStack(t)
	access, refresh := s.issue(t, "u-oidc")
	ctx := oidc.ClientContext(context.Background(), s.client)
	provider, err := oidc.NewProvider(ctx, s.issuerURL)
	if err != nil {
		t.Fatalf("go-oidc discovery of %s: %v", s.issuerURL, err)
	}
	var meta struct {
		TokenEndpoint         string `json:"token_endpoint"`
		RevocationEndpoint    string `json:"revocation_endpoint"`
		IntrospectionEndpoint string `json:"introspection_endpoint"`
	}
	if err := provider.Claims(&meta); err != nil || meta.TokenEndpoint != s.tokenService+"/auth/token" ||
		meta.RevocationEndpoint != s.tokenService+"/auth/revoke" || meta.IntrospectionEndpoint != s.issuerURL+"/auth/introspect" {
		t.Errorf("discovery endpoints %+v, %v", meta, err)
	}
	verifier := provider.Verifier(&oidc.Config{ClientID: consumerAudience})
	idt, err := verifier.Verify(ctx, access)
	if err != nil {
		t.Fatalf("go-oidc refuses an issued access token: %v", err)
	}
	var claims struct {
		ClientID string `json:"client_id"`
		SID      string `json:"sid"`
	}
	if err := idt.Claims(&claims); err != nil || idt.Subject != "u-oidc" || claims.ClientID != "system:serviceaccount:login:login-service" || claims.SID == "" {
		t.Errorf("go-oidc read sub %q, client_id %q, sid %q (%v)", idt.Subject, claims.ClientID, claims.SID, err)
	}
	for name, tok := range map[string]string{
		"the refresh token of the login": refresh,
		"an expired token": s.signed(t, "u-oidc", func(c *token.Claims) {
			c.IssuedAt, c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(-time.Hour)), jwt.NewNumericDate(time.Now().Add(-time.Minute))
		}),
		"a token for another audience": s.signed(t, "u-oidc", func(c *token.Claims) { c.Audience = jwt.ClaimStrings{"other.example.com"} }),
	} {
		if _, err := verifier.Verify(ctx, tok); err == nil {
			t.Errorf("go-oidc accepts %s", name)
		}
	}
}

// TestConsumers_KubeAPIServerAuthenticatesIssuedAccessTokens: a real kube-apiserver with
// a structured AuthenticationConfiguration whose JWT issuer is the verifier's https URL
// (its CA inline, the AuthService's audience, username from sub): `kubectl auth whoami`
// with an issued access token names the user; an expired token, a token for another
// audience and a refresh token are refused.
func TestConsumers_KubeAPIServerAuthenticatesIssuedAccessTokens(t *testing.T) {
	s := newConsumerStack(t)
	access, refresh := s.issue(t, "u-kube")
	whoami := func(tok string) (string, error) {
		var out, errOut bytes.Buffer
		cmd := exec.Command(s.kubectl[0], append(s.kubectl[1:], "--token", tok, "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}")...)
		cmd.Stdout, cmd.Stderr = &out, &errOut
		if err := cmd.Run(); err != nil {
			return "", fmt.Errorf("%w: %s", err, strings.TrimSpace(errOut.String()))
		}
		return out.String(), nil
	}
	// The API server fetches the issuer's discovery document and JWKS in the background
	// as it starts, and retries: the first answers may come before it has them.
	poll.Until(t, 60*time.Second, "kubectl auth whoami to name the user of an issued access token", func() error {
		name, err := whoami(access)
		if err == nil && name != "u-kube" {
			err = fmt.Errorf("whoami names %q", name)
		}
		return err
	})
	for name, tok := range map[string]string{
		"an expired token": s.signed(t, "u-kube", func(c *token.Claims) {
			c.IssuedAt, c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(-time.Hour)), jwt.NewNumericDate(time.Now().Add(-time.Minute))
		}),
		"a token for another audience":   s.signed(t, "u-kube", func(c *token.Claims) { c.Audience = jwt.ClaimStrings{"other.example.com"} }),
		"the refresh token of the login": refresh,
	} {
		got, err := whoami(tok)
		if err == nil || !strings.Contains(err.Error(), "Unauthorized") {
			t.Errorf("kubectl auth whoami with %s: %q, %v; want Unauthorized", name, got, err)
		}
	}
	if name, err := whoami(s.signed(t, "u-kube-2", func(*token.Claims) {})); err != nil || name != "u-kube-2" {
		t.Errorf("a second user signed by the same key: %q, %v", name, err)
	}
}
