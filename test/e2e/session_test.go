package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
)

// loginPayload is the payload of POST /auth/token, the original's login answer.
type loginPayload struct {
	ID              string `json:"id"`
	Email           string `json:"email"`
	Token           string `json:"token"`
	TokenExpiration int64  `json:"token_expiration"`
	RefreshToken    string `json:"refresh_token"`
}

// refreshPayload is the payload of /auth/refresh.
type refreshPayload struct {
	Token           string `json:"token"`
	RefreshToken    string `json:"refresh_token"`
	TokenExpiration int64  `json:"token_expiration"`
}

// TestE2E_SessionThroughTheOperatorsDeployments runs a whole session through the
// Deployments the operator makes, as the platform's login service would: a ServiceAccount
// listed in spec.issuance.clients gets a token from the TokenRequest API for the audience
// status.issuer, obtains a pair from the issuer Service (status.issuerURL), the verifier
// Service accepts the access token, a refresh rotates the pair and kills the old access
// token, a refresh retried at once gets a working pair (the grace period), presenting a
// rotated refresh token after its successor was used revokes the session, a logout kills the
// refresh token and every access token of its stamp, and a logout everywhere ends every
// session of the user. A ServiceAccount not in the list gets
// 403, a token for another audience 401.
func TestE2E_SessionThroughTheOperatorsDeployments(t *testing.T) {
	t.Parallel()
	wantKubernetesNode(t)
	ctx := context.Background()
	const name = "session"
	ns := "e2e-" + name
	ensureNamespace(t, ns)
	for _, sa := range []string{"login-service", "intruder"} {
		if err := kube.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa, Namespace: ns}}); err != nil {
			t.Fatal(err)
		}
	}
	key := createReady(t, name, func(as *authv1alpha1.AuthService) {
		as.Spec.Issuance.Clients = []authv1alpha1.IssuanceClient{{Namespace: ns, ServiceAccountName: "login-service"}}
	})
	as := getAuthService(t, key)
	if as.Status.Issuer == "" || as.Status.IssuerURL == "" {
		t.Fatalf("status.issuer %q, status.issuerURL %q: want both set", as.Status.Issuer, as.Status.IssuerURL)
	}
	issuerURL, verifierURL := issuerURL(t, key), serverURL(t, key)
	t.Logf("issuer %s (status.issuerURL %s), verifier %s, audience %s", issuerURL, as.Status.IssuerURL, verifierURL, as.Status.Issuer)

	saToken := func(sa, audience string) string {
		t.Helper()
		tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{Audiences: []string{audience}}}
		if err := kube.SubResource("token").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa, Namespace: ns}}, tr); err != nil {
			t.Fatalf("TokenRequest for %s/%s: %v", ns, sa, err)
		}
		return tr.Status.Token
	}
	login := saToken("login-service", as.Status.Issuer)
	userID := uuid.NewString()
	user := fmt.Sprintf(`{"id":%q,"email":"session@example.com","name":"Session"}`, userID)

	// Callers the issuer must refuse.
	if r := mustCall(t, http.MethodPost, issuerURL+"/auth/token", saToken("intruder", as.Status.Issuer), user); r.code != http.StatusForbidden {
		t.Errorf("a ServiceAccount not in spec.issuance.clients: %d %s, want 403", r.code, r.body)
	}
	if r := mustCall(t, http.MethodPost, issuerURL+"/auth/token", saToken("login-service", "https://elsewhere.example.com"), user); r.code != http.StatusUnauthorized {
		t.Errorf("an allowed ServiceAccount's token for another audience: %d %s, want 401", r.code, r.body)
	}
	if r := mustCall(t, http.MethodPost, issuerURL+"/auth/token", "", user); r.code != http.StatusUnauthorized {
		t.Errorf("no token: %d %s, want 401", r.code, r.body)
	}

	// Issue, verify.
	issued := decodePayload[loginPayload](t, mustCall(t, http.MethodPost, issuerURL+"/auth/token", login, user), http.StatusOK)
	if issued.ID != userID || issued.Token == "" || issued.RefreshToken == "" || issued.TokenExpiration <= time.Now().Unix() {
		t.Fatalf("login payload %+v: want user %s, both tokens and a future token_expiration", issued, userID)
	}
	expectCode(t, "the issued access token on the verifier", mustCall(t, http.MethodGet, verifierURL+"/auth/verify", issued.Token, ""), http.StatusOK)
	expectCode(t, "the refresh token presented to verify", mustCall(t, http.MethodGet, verifierURL+"/auth/verify", issued.RefreshToken, ""), http.StatusUnauthorized)
	expectCode(t, "the access token presented to refresh", mustCall(t, http.MethodGet, issuerURL+"/auth/refresh", issued.Token, ""), http.StatusUnauthorized)

	// Refresh: a new pair under a new stamp; the old access token dies.
	refreshed := decodePayload[refreshPayload](t, mustCall(t, http.MethodGet, issuerURL+"/auth/refresh", issued.RefreshToken, ""), http.StatusCreated)
	if refreshed.Token == "" || refreshed.RefreshToken == "" || refreshed.Token == issued.Token || refreshed.RefreshToken == issued.RefreshToken {
		t.Fatalf("refresh gave %+v: want a new pair", refreshed)
	}
	expectCode(t, "the refreshed access token", mustCall(t, http.MethodGet, verifierURL+"/auth/verify", refreshed.Token, ""), http.StatusOK)
	expectCodeWithin(t, "the access token of the rotated stamp", func() reply { return mustCall(t, http.MethodGet, verifierURL+"/auth/verify", issued.Token, "") }, http.StatusUnauthorized)

	// Logout: the refresh token of the stamp fails, and so does its access token.
	expectCode(t, "logout", mustCall(t, http.MethodPost, verifierURL+"/auth/logout", refreshed.Token, ""), http.StatusOK)
	expectCode(t, "refresh after logout", mustCall(t, http.MethodPost, issuerURL+"/auth/refresh", refreshed.RefreshToken, ""), http.StatusUnauthorized)
	expectCodeWithin(t, "the logged-out access token", func() reply { return mustCall(t, http.MethodGet, verifierURL+"/auth/verify", refreshed.Token, "") }, http.StatusUnauthorized)

	// A refresh retried at once (a client that lost the answer) gets a working pair within
	// the grace period (spec.issuance.refreshGracePeriod, 30s by default). Once the new
	// refresh token has been used, the rotated one presented again (a stolen copy) is reuse
	// and revokes the whole session: the pairs its rotations gave die too.
	d := decodePayload[loginPayload](t, mustCall(t, http.MethodPost, issuerURL+"/auth/token", login, user), http.StatusOK)
	rotated := decodePayload[refreshPayload](t, mustCall(t, http.MethodPost, issuerURL+"/auth/refresh", d.RefreshToken, ""), http.StatusCreated)
	retried := decodePayload[refreshPayload](t, mustCall(t, http.MethodPost, issuerURL+"/auth/refresh", d.RefreshToken, ""), http.StatusCreated)
	expectCode(t, "the pair of a retried refresh", mustCall(t, http.MethodGet, verifierURL+"/auth/verify", retried.Token, ""), http.StatusOK)
	next := decodePayload[refreshPayload](t, mustCall(t, http.MethodPost, issuerURL+"/auth/refresh", rotated.RefreshToken, ""), http.StatusCreated)
	expectCode(t, "the rotated refresh token presented after its successor was used", mustCall(t, http.MethodPost, issuerURL+"/auth/refresh", d.RefreshToken, ""), http.StatusUnauthorized)
	expectCodeWithin(t, "the access token of the latest pair after reuse", func() reply { return mustCall(t, http.MethodGet, verifierURL+"/auth/verify", next.Token, "") }, http.StatusUnauthorized)
	expectCode(t, "the refresh token of the latest pair after reuse", mustCall(t, http.MethodPost, issuerURL+"/auth/refresh", next.RefreshToken, ""), http.StatusUnauthorized)

	// Logout everywhere: two live sessions of the user (two devices) end together.
	a := decodePayload[loginPayload](t, mustCall(t, http.MethodPost, issuerURL+"/auth/token", login, user), http.StatusOK)
	b := decodePayload[loginPayload](t, mustCall(t, http.MethodPost, issuerURL+"/auth/token", login, user), http.StatusOK)
	for _, s := range []loginPayload{a, b} {
		expectCode(t, "a session before logout everywhere", mustCall(t, http.MethodGet, verifierURL+"/auth/verify", s.Token, ""), http.StatusOK)
	}
	expectCode(t, "logout everywhere", mustCall(t, http.MethodPost, verifierURL+"/auth/logout/all", a.Token, ""), http.StatusOK)
	for i, s := range []loginPayload{a, b} {
		expectCodeWithin(t, fmt.Sprintf("session %d's access token after logout everywhere", i), func() reply { return mustCall(t, http.MethodGet, verifierURL+"/auth/verify", s.Token, "") }, http.StatusUnauthorized)
		expectCode(t, fmt.Sprintf("session %d's refresh token after logout everywhere", i), mustCall(t, http.MethodGet, issuerURL+"/auth/refresh", s.RefreshToken, ""), http.StatusUnauthorized)
	}
	// A login after it starts a working session again.
	c := decodePayload[loginPayload](t, mustCall(t, http.MethodPost, issuerURL+"/auth/token", login, user), http.StatusOK)
	expectCode(t, "a session started after logout everywhere", mustCall(t, http.MethodGet, verifierURL+"/auth/verify", c.Token, ""), http.StatusOK)
}

// mustCall sends method to url with a bearer token and a JSON body (none when empty).
func mustCall(t *testing.T, method, url, bearer, body string) reply {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = bytes.NewReader([]byte(body))
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the answer: %v", method, url, err)
	}
	return reply{code: resp.StatusCode, body: string(data)}
}

func expectCode(t *testing.T, what string, r reply, want int) {
	t.Helper()
	if r.code != want {
		t.Fatalf("%s: %d %s, want %d", what, r.code, r.body, want)
	}
}

// expectCodeWithin calls call until it answers want, for at most crossReplicaBound: a token
// that a verifier replica verified before (and so holds in its cache) is refused there once the
// revocation's pub/sub message arrives (docs/verify-cache.md), which a request sent right after
// the revoking answer can beat.
func expectCodeWithin(t *testing.T, what string, call func() reply, want int) {
	t.Helper()
	start := time.Now()
	for attempt := 1; ; attempt++ {
		r := call()
		if r.code == want {
			if attempt > 1 {
				t.Logf("%s: %d after %s", what, want, time.Since(start).Round(time.Millisecond))
			}
			return
		}
		if time.Since(start) > crossReplicaBound {
			t.Fatalf("%s: %d %s for %s after the revocation, want %d within %s", what, r.code, r.body, time.Since(start).Round(time.Millisecond), want, crossReplicaBound)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// decodePayload checks the status and the success envelope of r and returns its payload.
func decodePayload[P any](t *testing.T, r reply, want int) P {
	t.Helper()
	var env struct {
		Success bool   `json:"success"`
		Message string `json:"message"`
		Payload P      `json:"payload"`
	}
	if r.code != want {
		t.Fatalf("answer %d %s, want %d", r.code, r.body, want)
	}
	if err := json.Unmarshal([]byte(r.body), &env); err != nil || !env.Success || env.Message != "Success" {
		t.Fatalf("answer %s: want a success envelope (%v)", r.body, err)
	}
	return env.Payload
}
