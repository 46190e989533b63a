package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hiringo/auth-operator/authserver/blacklist"
	"github.com/hiringo/auth-operator/authserver/httpapi"
	"github.com/hiringo/auth-operator/authserver/issuance"
	"github.com/hiringo/auth-operator/authserver/keyfiles"
	"github.com/hiringo/auth-operator/authserver/keyset"
	"github.com/hiringo/auth-operator/authserver/sessions"
	"github.com/hiringo/auth-operator/authserver/token"
	"github.com/hiringo/auth-operator/authserver/userlogouts"
	"github.com/hiringo/auth-operator/internal/devkeys"
	"github.com/hiringo/auth-operator/internal/testutil/poll"
	"github.com/hiringo/auth-operator/internal/testutil/redistest"
)

// TestLogoutUser_TheIssuerRefusesEveryTokenOfTheUser runs the operator (which creates
// the ConfigMap, the issuer's Role and binding), the issuer's ConfigMap watch as the
// issuer's ServiceAccount, a real Redis and a verifier's API: after logout-user, every
// access and refresh token of the user is refused, another user's still verify, and
// the request is marked applied with who asked.
func TestLogoutUser_TheIssuerRefusesEveryTokenOfTheUser(t *testing.T) {
	ns := newNamespace(t)
	createAuthService(t, ns, "auth")
	poll.Until(t, 30*time.Second, "the user-logouts ConfigMap", func() error {
		return k8sClient.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "auth-user-logouts"}, &corev1.ConfigMap{})
	})

	srv := newSessionServer(t)
	issuer := issuerClient(t, ns)
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := userlogouts.Run(ctx, userlogouts.Config{
			Client: issuer, Namespace: ns, Name: "auth-user-logouts", Sessions: srv.sessions, Applier: "auth-issuer-0",
		}); err != nil {
			t.Errorf("user logouts watch: %v", err)
		}
	})
	t.Cleanup(func() {
		stop()
		wg.Wait()
	})

	phone, laptop, other := srv.issue(t, "u-42"), srv.issue(t, "u-42"), srv.issue(t, "u-7")
	for _, p := range []issuance.Pair{phone, laptop, other} {
		srv.verify(t, p.Access, http.StatusOK)
	}

	if _, err := plugin(t, "logout-user", "-n", ns, "--as", "nobody", "u-42"); err == nil || !strings.Contains(err.Error(), "forbidden") {
		t.Errorf("logout-user as a user without RBAC: err = %v, want forbidden", err)
	}
	if _, err := plugin(t, "logout-user", "-n", ns, ""); err == nil || !strings.Contains(err.Error(), "the user id is empty") {
		t.Errorf("logout-user of an empty id: err = %v", err)
	}

	out, err := plugin(t, "logout-user", "-n", ns, "u-42", "--timeout", "30s")
	if err != nil {
		t.Fatalf("logout-user: %v\n%s", err, out)
	}
	t.Logf("kubectl authsvc logout-user u-42:\n%s", out)
	if !strings.Contains(out, "logout of user u-42 requested in ConfigMap "+ns+"/auth-user-logouts (key logout-") ||
		!strings.Contains(out, "applied by auth-issuer-0 at ") || !strings.Contains(out, "every token of user u-42 issued up to then is refused") {
		t.Errorf("logout-user output:\n%s", out)
	}
	for _, p := range []issuance.Pair{phone, laptop} {
		srv.verify(t, p.Access, http.StatusUnauthorized)
		if _, err := srv.issuance.Refresh(t.Context(), p.Refresh); !errors.Is(err, blacklist.ErrRevoked) {
			t.Errorf("refresh of a logged-out user's token: %v, want it revoked", err)
		}
	}
	srv.verify(t, other.Access, http.StatusOK)
	// A login after the logout works.
	srv.verify(t, srv.issue(t, "u-42").Access, http.StatusOK)

	cm := &corev1.ConfigMap{}
	if err := k8sClient.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "auth-user-logouts"}, cm); err != nil {
		t.Fatal(err)
	}
	if len(cm.Data) != 1 {
		t.Fatalf("ConfigMap data = %v, want the one request", cm.Data)
	}
	for k, v := range cm.Data {
		r, err := userlogouts.Parse(v)
		if err != nil || r.UserID != "u-42" || r.RequestedBy != "platform-admin" || r.AppliedAt == nil || r.AppliedBy != "auth-issuer-0" {
			t.Errorf("request %s = %s (%v): want u-42, requested by platform-admin, applied by auth-issuer-0", k, v, err)
		}
	}
}

// sessionServer is an issuer's issuance service and a verifier's API on one real Redis.
type sessionServer struct {
	store    *blacklist.Store
	sessions *sessions.Service
	issuance *issuance.Service
	api      *httptest.Server
}

func newSessionServer(t *testing.T) sessionServer {
	t.Helper()
	redis := redistest.Start(t, redistest.Options{})
	rdb, err := blacklist.NewClient(blacklist.ClientConfig{Addrs: []string{redis.Addr}, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	store := blacklist.NewStore(rdb, blacklist.StoreOptions{Prefix: "logout-user:"})
	t.Cleanup(store.Close)
	set, err := keyfiles.NewSet(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := devkeys.WriteMounted(dir, set); err != nil {
		t.Fatal(err)
	}
	keys := keyset.NewStore(dir, slog.New(slog.DiscardHandler), nil, keyset.Options{Private: true})
	if err := keys.Load(); err != nil {
		t.Fatal(err)
	}
	verifier := token.NewVerifier(keys, token.VerifierOptions{
		Leeway: 30 * time.Second, MaxAccessLifetime: time.Hour, MaxRefreshLifetime: sessions.DefaultRefreshLifetime,
	})
	svc := sessions.New(sessions.Config{Verifier: verifier, Store: store})
	api, err := httpapi.New(httpapi.Config{Keys: keys, Store: store, Sessions: svc})
	if err != nil {
		t.Fatal(err)
	}
	s := httptest.NewServer(api)
	t.Cleanup(s.Close)
	return sessionServer{store: store, sessions: svc, issuance: issuance.New(issuance.Config{Keys: keys, Verifier: verifier, Sessions: svc}), api: s}
}

func (s sessionServer) issue(t *testing.T, userID string) issuance.Pair {
	t.Helper()
	p, err := s.issuance.Issue(t.Context(), token.User{ID: userID}, "system:serviceaccount:login:login-service")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// verify asks the verifier's GET /auth/verify and checks the status.
func (s sessionServer) verify(t *testing.T, access string, want int) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, s.api.URL+"/auth/verify", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+access)
	resp, err := s.api.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != want {
		t.Errorf("verify: %d, want %d", resp.StatusCode, want)
	}
}

// issuerClient reaches the API server as the issuer's ServiceAccount, with only the
// rights the operator's Role gives it.
func issuerClient(t *testing.T, ns string) kubernetes.Interface {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Impersonate.UserName = "system:serviceaccount:" + ns + ":auth-issuer"
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestLogoutUser_AForgedApplicationDoesNotCancelTheLogout: whoever may write the
// user-logouts ConfigMap may write appliedAt too. A request marked applied that the store
// does not confirm (no cutoff for the user), or whose application no issuer can have
// written (before the request, which the user's earlier cutoff would otherwise "confirm"), is
// applied by the issuer all the same: the user's tokens are refused, and the entry records
// the issuer's application.
func TestLogoutUser_AForgedApplicationDoesNotCancelTheLogout(t *testing.T) {
	ns := newNamespace(t)
	createAuthService(t, ns, "auth")
	poll.Until(t, 30*time.Second, "the user-logouts ConfigMap", func() error {
		return k8sClient.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "auth-user-logouts"}, &corev1.ConfigMap{})
	})
	srv := newSessionServer(t)
	now := time.Now().UTC().Truncate(time.Second)
	keep := sessions.Lifetimes{}.WithDefaults().UserEntryKeep()
	// u-b logged out before: it has a cutoff, which the request below comes after.
	if _, err := srv.store.CutOff(t.Context(), blacklist.Subject{UserID: "u-b"}, false, keep); err != nil {
		t.Fatal(err)
	}
	tokens := map[string]issuance.Pair{"u-a": srv.issue(t, "u-a"), "u-b": srv.issue(t, "u-b")}
	for _, p := range tokens {
		srv.verify(t, p.Access, http.StatusOK)
	}
	forged := func(user string, applied time.Time) string {
		r, err := userlogouts.New(user, "platform-admin", now.Add(-time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		r.AppliedAt, r.AppliedBy = &applied, "auth-issuer-7"
		return r.Encode()
	}
	cm := &corev1.ConfigMap{}
	if err := k8sClient.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "auth-user-logouts"}, cm); err != nil {
		t.Fatal(err)
	}
	cm.Data = map[string]string{
		"logout-unconfirmed": forged("u-a", now.Add(-30*time.Second)),
		"logout-before-ask":  forged("u-b", now.Add(-20*time.Minute)),
	}
	if err := k8sClient.Update(t.Context(), cm); err != nil {
		t.Fatal(err)
	}

	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := userlogouts.Run(ctx, userlogouts.Config{
			Client: issuerClient(t, ns), Namespace: ns, Name: "auth-user-logouts", Sessions: srv.sessions, Applier: "auth-issuer-0",
		}); err != nil {
			t.Errorf("user logouts watch: %v", err)
		}
	})
	t.Cleanup(func() {
		stop()
		wg.Wait()
	})
	poll.Until(t, 30*time.Second, "both requests applied by the issuer", func() error {
		got := &corev1.ConfigMap{}
		if err := k8sClient.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "auth-user-logouts"}, got); err != nil {
			return err
		}
		for k, v := range got.Data {
			if r, err := userlogouts.Parse(v); err != nil || r.AppliedBy != "auth-issuer-0" {
				return errors.New(k + " = " + v)
			}
		}
		return nil
	})
	for user, p := range tokens {
		t.Run(user, func(t *testing.T) { srv.verify(t, p.Access, http.StatusUnauthorized) })
	}
}
