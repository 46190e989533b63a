package e2e

import (
	"context"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"

	"github.com/hiringo/auth-operator/internal/testutil/poll"
)

// The operator as the Helm test installs it.
const (
	helmRelease   = "auth-operator"
	helmNamespace = "auth-operator-helm"
)

// operatorOnce installs the operator with the release's install.yaml for the parallel tests: after
// the sequential tests (which run first, each alone), so that the Helm test can install the
// chart, whose cluster-scoped objects bear the same names, and remove it before.
var (
	operatorOnce sync.Once
	operatorErr  error
)

// operatorInstalled makes sure the operator of the release's install.yaml runs.
func operatorInstalled(t *testing.T) {
	t.Helper()
	operatorOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		operatorErr = installOperator(ctx)
	})
	if operatorErr != nil {
		t.Fatalf("installing the operator with the release's install.yaml: %v", operatorErr)
	}
}

// helm runs the pinned helm on the cluster.
func helm(t *testing.T, args ...string) string {
	t.Helper()
	bin := filepath.Join(controlPlaneDir, "helm")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, append([]string{"--kubeconfig", stack.KubeconfigPath}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestE2E_InstallWithHelmRunsTheOperatorInTheCluster installs the release's packaged chart as
// the README's Helm section tells users, with the CRD applied first (the chart's copy off), in
// a namespace that enforces the restricted Pod Security Standard; checks that the manager runs
// the released image (pinned by digest) and makes an AuthService Ready whose verifier logs a
// user out; and uninstalls it. It is sequential: it runs before the other tests install the
// release's install.yaml, whose cluster-scoped objects bear the same names.
func TestE2E_InstallWithHelmRunsTheOperatorInTheCluster(t *testing.T) {
	if operatorErr != nil || isInstalled(t) {
		t.Fatal("dist/install.yaml's operator runs already: this test must run before the parallel tests")
	}
	ctx := context.Background()
	if _, err := stack.Kubectl(ctx, "apply", "--server-side", "-f", filepath.Join(repoRoot, "config", "crd", "bases")); err != nil {
		t.Fatal(err)
	}
	if err := stack.RestrictedNamespace(ctx, helmNamespace); err != nil {
		t.Fatal(err)
	}
	helm(t, "install", helmRelease, released.Chart, "--namespace", helmNamespace, "--set", "crds.enabled=false", "--wait", "--timeout", "2m")
	// Uninstalled as a user would, with the CRD deleted too, so that the next install starts
	// from an empty cluster: at the end, or when the test fails before.
	uninstalled := false
	t.Cleanup(func() {
		if !uninstalled {
			removeOperatorAndCRD(t, helmNamespace)
		}
	})
	if err := waitDeploymentAvailable(ctx, types.NamespacedName{Namespace: helmNamespace, Name: helmRelease}, time.Minute); err != nil {
		t.Fatal(err)
	}
	var manager appsv1.Deployment
	if err := kube.Get(ctx, types.NamespacedName{Namespace: helmNamespace, Name: helmRelease}, &manager); err != nil {
		t.Fatal(err)
	}
	if image := manager.Spec.Template.Spec.Containers[0].Image; image != released.PinnedImage() {
		t.Errorf("the chart's manager runs %s, want the released image pinned by digest, %s", image, released.PinnedImage())
	}

	key := createReadyWithoutInstall(t, "helm", nil)
	tok, _, _, err := issuerMinter(t, key).mint(10 * time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if r, err := call(http.MethodPost, serverURL(t, key)+"/auth/logout", tok); err != nil || r.code != http.StatusOK {
		t.Fatalf("logout through the chart's operator: %d %s %v", r.code, r.body, err)
	}
	uninstalled = true
	removeOperatorAndCRD(t, helmNamespace)
	poll.Until(t, time.Minute, "the chart's manager gone", func() error {
		err := kube.Get(ctx, types.NamespacedName{Namespace: helmNamespace, Name: helmRelease}, &appsv1.Deployment{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return errStillThere
	})
}

var errStillThere = apierrors.NewBadRequest("still there")

// isInstalled reports whether dist/install.yaml's manager exists.
func isInstalled(t *testing.T) bool {
	t.Helper()
	err := kube.Get(context.Background(), types.NamespacedName{Namespace: operatorNamespace, Name: operatorDeployment}, &appsv1.Deployment{})
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	return err == nil
}
