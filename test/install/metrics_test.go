package install

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
)

// scrape GETs the manager's metrics with a bearer token (none when empty) and returns the
// status and body.
func scrape(ctx context.Context, m *runningManager, token string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("https://127.0.0.1:%d/metrics", m.metricsPort), nil)
	if err != nil {
		return 0, "", err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := insecureClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// serviceAccountToken creates a ServiceAccount and returns a short-lived token of it, issued by
// the API server as it issues a pod's.
func serviceAccountToken(t *testing.T, namespace, name string) string {
	t.Helper()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}
	if err := k8sClient.Create(t.Context(), sa); err != nil {
		t.Fatalf("create ServiceAccount %s/%s: %v", namespace, name, err)
	}
	return strings.TrimSpace(tools.mustRun(t, nil, tools.kubectl, "create", "token", name, "--namespace", namespace, "--duration=10m").stdout)
}

// assertMetricsNeedTheReaderRole checks the manager's metrics authorization end to end: a
// scrape without a token is refused, the manager reviews a scraper's token with the API server
// (which needs its metrics-auth role), a ServiceAccount bound to readerRole gets the metrics,
// and one without it is refused. It returns the reader's token.
func assertMetricsNeedTheReaderRole(t *testing.T, m *runningManager, namespace, readerRole string) string {
	t.Helper()
	// The metrics server starts beside the probes, not before them: wait until it answers.
	var code int
	var body string
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, managerTimeout, true, func(ctx context.Context) (bool, error) {
		var err error
		code, body, err = scrape(ctx, m, "")
		return err == nil, nil
	})
	if err != nil || code != http.StatusUnauthorized {
		t.Errorf("/metrics without a token answered %d (%v), want 401: %.200s", code, err, body)
	}

	reader := serviceAccountToken(t, namespace, "metrics-scraper")
	stranger := serviceAccountToken(t, namespace, "metrics-stranger")
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: namespace + "-metrics-scraper"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: readerRole},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: namespace, Name: "metrics-scraper"}},
	}
	if err := k8sClient.Create(t.Context(), binding); err != nil {
		t.Fatalf("bind %s: %v", readerRole, err)
	}

	// The binding reaches the authorizer a moment after it is stored.
	err = wait.PollUntilContextTimeout(t.Context(), 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		var err error
		code, body, err = scrape(ctx, m, reader)
		return err == nil && code == http.StatusOK, nil
	})
	if err != nil {
		t.Fatalf("a ServiceAccount bound to %s got %d from /metrics: %s", readerRole, code, body)
	}
	if !strings.Contains(body, "controller_runtime_reconcile_total") {
		t.Errorf("/metrics lacks the controller metrics:\n%.400s", body)
	}
	if code, body, err := scrape(t.Context(), m, stranger); err != nil || code != http.StatusForbidden {
		t.Errorf("a ServiceAccount without %s got %d (%v) from /metrics, want 403: %.200s", readerRole, code, err, body)
	}
	return reader
}
