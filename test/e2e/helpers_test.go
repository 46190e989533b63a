package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
	"github.com/hiringo/auth-operator/authserver/keyfiles"
	"github.com/hiringo/auth-operator/authserver/token"
)

// createReady creates a namespace and an AuthService in it, waits until it is Ready and
// returns its key.
func createReady(t *testing.T, name string, mutate func(*authv1alpha1.AuthService)) types.NamespacedName {
	t.Helper()
	ctx := context.Background()
	ns := "e2e-" + name
	// A test may have made the namespace already, for objects the AuthService refers to.
	if err := kube.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	as := &authv1alpha1.AuthService{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
	if mutate != nil {
		mutate(as)
	}
	if err := kube.Create(ctx, as); err != nil {
		t.Fatalf("creating AuthService: %v", err)
	}
	key := types.NamespacedName{Namespace: ns, Name: name}
	t.Cleanup(func() {
		if t.Failed() {
			logPodLogs(t, ns)
		}
	})
	if err := stack.WaitReady(ctx, key, 2*time.Minute, func(msg string) { t.Logf("%s: %s", key, msg) }); err != nil {
		t.Fatal(err)
	}
	return key
}

// logPodLogs logs the tail of every container log of the pods running in namespace ns,
// so that a failed test shows what its auth servers and Redis pods said.
func logPodLogs(t *testing.T, ns string) {
	t.Helper()
	for _, p := range stack.Runner.Pods() {
		if p.Namespace != ns {
			continue
		}
		for _, c := range p.Containers {
			data, err := tailOf(c.LogFile, 4000)
			if err != nil {
				t.Logf("---- %s/%s: %v", p.Name, c.Name, err)
				continue
			}
			t.Logf("---- %s/%s (ready %v, restarts %d, log tail) ----\n%s", p.Name, c.Name, c.Ready, c.Restarts, data)
		}
	}
}

// tailOf returns the last n bytes of the file at path (all of it when shorter).
func tailOf(path string, n int) ([]byte, error) {
	data, err := os.ReadFile(path)
	if len(data) > n {
		data = data[len(data)-n:]
	}
	return data, err
}

func getAuthService(t *testing.T, key types.NamespacedName) *authv1alpha1.AuthService {
	t.Helper()
	var as authv1alpha1.AuthService
	if err := kube.Get(context.Background(), key, &as); err != nil {
		t.Fatal(err)
	}
	return &as
}

// reply is an HTTP answer of the auth server.
type reply struct {
	code int
	body string
}

// call sends method to url with a bearer token.
func call(method, url, tok string) (reply, error) {
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		return reply{}, err
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return reply{code: resp.StatusCode, body: string(body)}, err
}

// minter signs seed-shaped tokens with the active key of a materialised signing-key
// Secret, with the auth server's own issuing code, as `authserver token issue` does. Only
// the issuer's pods mount that Secret: the verifier's hold public keys only.
type minter struct{ keysDir string }

// issuerMinter is a minter on the Secret as the first ready issuer pod of key mounts it.
func issuerMinter(t *testing.T, key types.NamespacedName) minter {
	t.Helper()
	dir, err := stack.SigningKeysDir(key)
	if err != nil {
		t.Fatal(err)
	}
	return minter{keysDir: dir}
}

// mint returns a token valid for ttl, the kid that signed it and its user id.
func (m minter) mint(ttl time.Duration) (tok, kid, userID string, err error) {
	set, err := keyfiles.ReadDir(m.keysDir)
	if err != nil {
		return "", "", "", err
	}
	active, ok := set.Active()
	if !ok {
		return "", "", "", fmt.Errorf("no active key in %s", m.keysDir)
	}
	userID = uuid.NewString()
	now := time.Now()
	stamp := now.UTC().Format(time.RFC3339Nano)
	claims := token.NewClaims(token.User{
		ID: userID, Name: "E2E", Email: "e2e@example.com", CreatedAt: stamp, UpdatedAt: stamp,
		Auth: token.Session{ID: uuid.NewString(), Token: strings.ReplaceAll(uuid.NewString(), "-", "")},
	}, now, ttl)
	tok, err = token.Issue(active, claims)
	return tok, active.ID, userID, err
}

// kidOf reads the kid from a token's header.
func kidOf(tok string) string {
	header, _, _ := strings.Cut(tok, ".")
	raw, err := base64.RawURLEncoding.DecodeString(header)
	if err != nil {
		return ""
	}
	var h struct {
		Kid string `json:"kid"`
	}
	_ = json.Unmarshal(raw, &h)
	return h.Kid
}

// activeKidIn reads the active kid of a materialised keys directory: a verifier's public
// projection or an issuer's signing-key Secret.
func activeKidIn(dir string) (string, error) {
	set, err := keyfiles.ReadPublicDir(dir)
	if err != nil {
		return "", err
	}
	k, ok := set.Active()
	if !ok {
		return "", fmt.Errorf("no active key in %s", dir)
	}
	return k.ID, nil
}
