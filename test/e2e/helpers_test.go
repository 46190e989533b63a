package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
	"github.com/hiringo/auth-operator/authserver/keydomain"
	"github.com/hiringo/auth-operator/authserver/keyfiles"
	"github.com/hiringo/auth-operator/authserver/token"
	"github.com/hiringo/auth-operator/internal/imagebuild"
)

// The labels and ports the operator gives the auth server's pods.
const (
	appLabel      = "app.kubernetes.io/name"
	instanceLabel = "app.kubernetes.io/instance"
	appVerifier   = "authserver"
	appIssuer     = "authserver-issuer"
	appRedis      = "redis"
	appSentinel   = "redis-sentinel"
	serverPort    = 8080
)

// createReady creates a namespace that enforces the restricted Pod Security Standard and an
// AuthService in it (its managed Redis from the suite's image), waits until it is Ready and
// returns its key.
func createReady(t *testing.T, name string, mutate func(*authv1alpha1.AuthService)) types.NamespacedName {
	t.Helper()
	operatorInstalled(t)
	return createReadyWithoutInstall(t, name, mutate)
}

// createReadyWithoutInstall is createReady for a test that runs the operator itself.
func createReadyWithoutInstall(t *testing.T, name string, mutate func(*authv1alpha1.AuthService)) types.NamespacedName {
	t.Helper()
	ctx := context.Background()
	ns := "e2e-" + name
	if err := stack.RestrictedNamespace(ctx, ns); err != nil {
		t.Fatal(err)
	}
	as := &authv1alpha1.AuthService{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
	as.Spec.Redis.Managed = &authv1alpha1.ManagedRedisSpec{}
	if mutate != nil {
		mutate(as)
	}
	if m := as.Spec.Redis.Managed; m != nil && m.Image == "" {
		m.Image = imagebuild.RedisImage
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
	if err := stack.WaitReady(ctx, key, 3*time.Minute, func(msg string) { t.Logf("%s: %s", key, msg) }); err != nil {
		t.Fatal(err)
	}
	return key
}

// logPodLogs logs the tail of every container log of the pods of namespace ns, from the API,
// with the previous run's of a restarted container.
func logPodLogs(t *testing.T, ns string) {
	t.Helper()
	ctx := context.Background()
	pods, err := clientset.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Logf("listing the pods of %s: %v", ns, err)
		return
	}
	for _, p := range pods.Items {
		for _, cs := range append(append([]corev1.ContainerStatus(nil), p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
			for _, previous := range []bool{true, false} {
				if previous && cs.RestartCount == 0 {
					continue
				}
				data, err := clientset.CoreV1().Pods(ns).GetLogs(p.Name, &corev1.PodLogOptions{Container: cs.Name, Previous: previous, TailLines: ptr.To[int64](40)}).DoRaw(ctx)
				if err != nil {
					t.Logf("---- %s/%s (previous %v): %v", p.Name, cs.Name, previous, err)
					continue
				}
				t.Logf("---- %s/%s (ready %v, restarts %d, previous %v, log tail) ----\n%s", p.Name, cs.Name, cs.Ready, cs.RestartCount, previous, data)
			}
		}
	}
}

func getAuthService(t *testing.T, key types.NamespacedName) *authv1alpha1.AuthService {
	t.Helper()
	var as authv1alpha1.AuthService
	if err := kube.Get(context.Background(), key, &as); err != nil {
		t.Fatal(err)
	}
	return &as
}

// serverURL is where the host reaches the verifier Service (status.serverURL).
func serverURL(t *testing.T, key types.NamespacedName) string {
	t.Helper()
	u, err := stack.ServiceURL(context.Background(), getAuthService(t, key).Status.ServerURL)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// issuerURL is where the host reaches the issuer Service (status.issuerURL).
func issuerURL(t *testing.T, key types.NamespacedName) string {
	t.Helper()
	u, err := stack.ServiceURL(context.Background(), getAuthService(t, key).Status.IssuerURL)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// serverPod is a ready pod of the auth server, reached at its own address.
type serverPod struct {
	Name string
	// URL reaches this pod alone: its pod IP, which the node routes to the host.
	URL string
	Pod corev1.Pod
}

// podsOf lists the pods of one app of an AuthService that are not being deleted.
func podsOf(ctx context.Context, key types.NamespacedName, app string) ([]corev1.Pod, error) {
	var pods corev1.PodList
	if err := kube.List(ctx, &pods, client.InNamespace(key.Namespace), client.MatchingLabels{instanceLabel: key.Name, appLabel: app}); err != nil {
		return nil, err
	}
	var out []corev1.Pod
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	return out, nil
}

// readyServerPods lists the ready pods of one app (appVerifier, appIssuer) of an AuthService.
func readyServerPods(t *testing.T, key types.NamespacedName, app string) []serverPod {
	t.Helper()
	pods, err := podsOf(context.Background(), key, app)
	if err != nil {
		t.Fatal(err)
	}
	var out []serverPod
	for _, p := range pods {
		if podReady(&p) && p.Status.PodIP != "" {
			out = append(out, serverPod{Name: p.Name, URL: "http://" + net.JoinHostPort(p.Status.PodIP, strconv.Itoa(serverPort)), Pod: p})
		}
	}
	return out
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// containerStatus returns the status of the container name of pod.
func containerStatus(p *corev1.Pod, name string) (corev1.ContainerStatus, bool) {
	for _, cs := range p.Status.ContainerStatuses {
		if cs.Name == name {
			return cs, true
		}
	}
	return corev1.ContainerStatus{}, false
}

// ensureNamespace creates a restricted namespace for objects a test makes before its
// AuthService.
func ensureNamespace(t *testing.T, ns string) {
	t.Helper()
	if err := stack.RestrictedNamespace(context.Background(), ns); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

// reply is an HTTP answer of the auth server.
type reply struct {
	code int
	body string
}

// httpClient is the tests' client: short timeouts, keep-alive connections reused.
var httpClient = &http.Client{Timeout: 5 * time.Second}

// call sends method to url with a bearer token.
func call(method, url, tok string) (reply, error) {
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		return reply{}, err
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return reply{code: resp.StatusCode, body: string(body)}, err
}

// minter signs seed-shaped tokens with the active key of the AuthService's signing-key
// Secret, read through the API, with the auth server's own issuing code: as the issuer does,
// without the issuer's round trip, for tests that need thousands of tokens.
type minter struct {
	mu  sync.Mutex
	set keydomain.Set
	// reload, when set, reads the Secret again before each token (the rotation test).
	reload func() (keydomain.Set, error)
}

// named is the AuthService of key, for the names of its objects.
func named(key types.NamespacedName) *authv1alpha1.AuthService {
	return &authv1alpha1.AuthService{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}}
}

// signingKeys reads and decodes the AuthService's signing-key Secret.
func signingKeys(ctx context.Context, key types.NamespacedName) (keydomain.Set, error) {
	var s corev1.Secret
	if err := kube.Get(ctx, types.NamespacedName{Namespace: key.Namespace, Name: named(key).SigningKeysSecretName()}, &s); err != nil {
		return keydomain.Set{}, err
	}
	return keyfiles.Decode(s.Data)
}

// issuerMinter is a minter on the signing-key Secret as it is now.
func issuerMinter(t *testing.T, key types.NamespacedName) *minter {
	t.Helper()
	set, err := signingKeys(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return &minter{set: set}
}

// liveMinter is a minter that reads the Secret again for every token, so it signs with the
// key the operator has just made active, before any issuer pod has it.
func liveMinter(key types.NamespacedName) *minter {
	return &minter{reload: func() (keydomain.Set, error) { return signingKeys(context.Background(), key) }}
}

// mint returns a token valid for ttl, the kid that signed it and its user id.
func (m *minter) mint(ttl time.Duration) (tok, kid, userID string, err error) {
	m.mu.Lock()
	if m.reload != nil {
		if m.set, err = m.reload(); err != nil {
			m.mu.Unlock()
			return "", "", "", err
		}
	}
	set := m.set
	m.mu.Unlock()
	active, ok := set.Active()
	if !ok {
		return "", "", "", fmt.Errorf("no active key in the signing-key Secret")
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

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func first(list []string) string {
	if len(list) == 0 {
		return ""
	}
	return list[0]
}
