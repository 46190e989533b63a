package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
	"github.com/hiringo/auth-operator/internal/release"
	"github.com/hiringo/auth-operator/internal/testutil/poll"
)

// previousRelease is what an upgrade starts from: a version to build it as and the commit
// whose sources the test builds the release of. Until v0.2.0 exists it is main before the
// first release (0f2b6f4, the code installed from source before v0.1.0: the earlier store
// layout, the public keys in a ConfigMap); after that, the latest tag's commit.
var previousRelease = struct{ version, commit string }{"v0.0.0-main.0f2b6f4", "0f2b6f4c7eb2dc0a67afb16644461bfa32eeedc2"}

// buildPreviousRelease builds the previous release's image and chart from its commit's
// sources (git archive of this checkout), with this checkout's release code.
func buildPreviousRelease(t *testing.T, ctx context.Context) release.Artifacts {
	t.Helper()
	src := t.TempDir()
	archive := exec.CommandContext(ctx, "sh", "-c", fmt.Sprintf("git -C %q archive %s | tar -x -C %q", repoRoot, previousRelease.commit, src))
	if out, err := archive.CombinedOutput(); err != nil {
		t.Fatalf("the previous release's sources (commit %s, %s) are needed: %v\n%s", previousRelease.commit, previousRelease.version, err, out)
	}
	a, err := release.Build(ctx, release.Options{
		Module: src, Version: previousRelease.version, Revision: previousRelease.commit, Out: filepath.Join(t.TempDir(), "release"),
		ImagePlatforms: []string{"linux/" + runtime.GOARCH},
		Kustomize:      filepath.Join(controlPlaneDir, "kustomize"), Helm: filepath.Join(controlPlaneDir, "helm"),
	})
	if err != nil {
		t.Fatalf("building %s: %v", previousRelease.version, err)
	}
	return a
}

// deploymentImageAndReady reports the image a Deployment's pods run once every replica is
// updated and available.
func deploymentRolledOut(ctx context.Context, key types.NamespacedName, image string) error {
	var d appsv1.Deployment
	if err := kube.Get(ctx, key, &d); err != nil {
		return err
	}
	if got := d.Spec.Template.Spec.Containers[0].Image; got != image {
		return fmt.Errorf("%s runs %s, not yet %s", key, got, image)
	}
	return waitDeploymentAvailable(ctx, key, time.Second)
}

// TestE2E_UpgradeFromThePreviousReleaseKeepsLogoutsSessionsAndKeys installs the previous
// release's chart and image (built from its commit), makes sessions, logouts, a logout
// everywhere and two rotations, upgrades to this checkout's release with `helm upgrade`
// (the chart's CRD included), and checks that the AuthService and its spec survive the CRD
// upgrade, every logged-out token is still refused, every live session still refreshes,
// every key still verifies what it signed, and no rotation is skipped or repeated. It is
// sequential: the chart's cluster-scoped objects bear the names of install.yaml's.
func TestE2E_UpgradeFromThePreviousReleaseKeepsLogoutsSessionsAndKeys(t *testing.T) {
	if operatorErr != nil || isInstalled(t) {
		t.Fatal("install.yaml's operator runs already: this test must run before the parallel tests")
	}
	ctx := context.Background()
	prev := buildPreviousRelease(t, ctx)
	if err := stack.ImportImages(ctx, prev.ImageArchive); err != nil {
		t.Fatal(err)
	}
	const operatorNS, name = "auth-operator-upgrade", "upgrade"
	ns := "e2e-" + name
	for _, n := range []string{operatorNS, ns} {
		if err := stack.RestrictedNamespace(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	helm(t, "install", helmRelease, prev.Chart, "--namespace", operatorNS, "--wait", "--timeout", "3m")
	// Uninstalled with the CRD at the end, so that the next install starts from an empty
	// cluster.
	t.Cleanup(func() { removeOperatorAndCRD(t, operatorNS) })
	if err := deploymentRolledOut(ctx, types.NamespacedName{Namespace: operatorNS, Name: helmRelease}, prev.PinnedImage()); err != nil {
		t.Fatal(err)
	}

	if err := kube.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "login-service", Namespace: ns}}); err != nil {
		t.Fatal(err)
	}
	key := createReadyWithoutInstall(t, name, func(as *authv1alpha1.AuthService) {
		as.Spec.Issuance.Clients = []authv1alpha1.IssuanceClient{{Namespace: ns, ServiceAccountName: "login-service"}}
		as.Spec.SigningKeys.MinPublishTime = &metav1.Duration{Duration: 15 * time.Second}
	})
	as := getAuthService(t, key)
	issuer, verifier := issuerURL(t, key), serverURL(t, key)
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{Audiences: []string{as.Status.Issuer}}}
	if err := kube.SubResource("token").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "login-service", Namespace: ns}}, tr); err != nil {
		t.Fatal(err)
	}
	login := tr.Status.Token
	signIn := func(user string) loginPayload {
		body := fmt.Sprintf(`{"id":%q,"email":"%s@example.com","name":"Upgrade"}`, user, user)
		return decodePayload[loginPayload](t, mustCall(t, http.MethodPost, issuer+"/auth/token", login, body), http.StatusOK)
	}

	// Sessions and logouts of every kind, across two rotations, on the previous release.
	refreshed := signIn("u-refreshed")
	rotated := decodePayload[refreshPayload](t, mustCall(t, http.MethodPost, issuer+"/auth/refresh", refreshed.RefreshToken, ""), http.StatusCreated)
	loggedOut := signIn("u-logged-out")
	expectCode(t, "logout before the upgrade", mustCall(t, http.MethodPost, verifier+"/auth/logout", loggedOut.Token, ""), http.StatusOK)
	everywhereA, everywhereB := signIn("u-everywhere"), signIn("u-everywhere")
	expectCode(t, "logout everywhere before the upgrade", mustCall(t, http.MethodPost, verifier+"/auth/logout/all", everywhereA.Token, ""), http.StatusOK)
	live := []loginPayload{signIn("u-live-" + uuid.NewString()[:8])}
	for round := 1; round <= 2; round++ {
		before := getAuthService(t, key).Status.ActiveKeyID
		patch := client.MergeFrom(getAuthService(t, key))
		as := getAuthService(t, key)
		if as.Annotations == nil {
			as.Annotations = map[string]string{}
		}
		as.Annotations[authv1alpha1.RotateAnnotation] = fmt.Sprintf("upgrade-%d", round)
		if err := kube.Patch(ctx, as, patch); err != nil {
			t.Fatal(err)
		}
		poll.Until(t, 2*time.Minute, fmt.Sprintf("rotation %d on every issuer", round), func() error {
			active := getAuthService(t, key).Status.ActiveKeyID
			if active == before {
				return fmt.Errorf("still %s", active)
			}
			for _, p := range readyServerPods(t, key, appIssuer) {
				if kid, err := activeKidOf(p); err != nil || kid != active {
					return fmt.Errorf("issuer %s signs with %s (%w), not yet %s", p.Name, kid, err, active)
				}
			}
			return nil
		})
		live = append(live, signIn("u-live-"+uuid.NewString()[:8]))
	}
	keysBefore := getAuthService(t, key).Status.Keys
	specBefore := getAuthService(t, key).Spec
	revoked := []string{refreshed.Token, loggedOut.Token, everywhereA.Token, everywhereB.Token}
	revokedRefresh := []string{refreshed.RefreshToken, loggedOut.RefreshToken, everywhereA.RefreshToken, everywhereB.RefreshToken}

	// The upgrade, as a user runs it.
	helm(t, "upgrade", helmRelease, released.Chart, "--namespace", operatorNS, "--wait", "--timeout", "3m")
	if err := deploymentRolledOut(ctx, types.NamespacedName{Namespace: operatorNS, Name: helmRelease}, released.PinnedImage()); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{named(key).ServerName(), named(key).IssuerName()} {
		poll.Until(t, 3*time.Minute, d+" rolled out on the new image", func() error {
			return deploymentRolledOut(ctx, types.NamespacedName{Namespace: ns, Name: d}, released.PinnedImage())
		})
	}
	if err := stack.WaitReady(ctx, key, 3*time.Minute, func(msg string) { t.Logf("%s after the upgrade: %s", key, msg) }); err != nil {
		t.Fatal(err)
	}
	issuer, verifier = issuerURL(t, key), serverURL(t, key)

	t.Run("the CRD upgrade keeps the AuthService and its spec", func(t *testing.T) {
		var crd apiextensionsv1.CustomResourceDefinition
		if err := kube.Get(ctx, types.NamespacedName{Name: "authservices.auth.hiringo.tech"}, &crd); err != nil {
			t.Fatal(err)
		}
		after := getAuthService(t, key)
		if after.Spec.Issuance.Clients[0] != specBefore.Issuance.Clients[0] || after.Spec.SigningKeys.MinPublishTime.Duration != specBefore.SigningKeys.MinPublishTime.Duration {
			t.Errorf("spec after the upgrade %+v, before %+v", after.Spec, specBefore)
		}
	})
	// Before the logged-out tokens: presenting the refreshed session's first refresh token
	// again is a reuse, which rightly ends that session.
	t.Run("every live session verifies and refreshes, whichever key signed it", func(t *testing.T) {
		for i, s := range live {
			expectCode(t, fmt.Sprintf("live session %d (kid %s) verifies", i, kidOf(s.Token)), mustCall(t, http.MethodGet, verifier+"/auth/verify", s.Token, ""), http.StatusOK)
			next := decodePayload[refreshPayload](t, mustCall(t, http.MethodPost, issuer+"/auth/refresh", s.RefreshToken, ""), http.StatusCreated)
			expectCode(t, fmt.Sprintf("live session %d's new access token", i), mustCall(t, http.MethodGet, verifier+"/auth/verify", next.Token, ""), http.StatusOK)
		}
		next := decodePayload[refreshPayload](t, mustCall(t, http.MethodPost, issuer+"/auth/refresh", rotated.RefreshToken, ""), http.StatusCreated)
		expectCode(t, "the session refreshed before the upgrade refreshes again", mustCall(t, http.MethodGet, verifier+"/auth/verify", next.Token, ""), http.StatusOK)
	})
	t.Run("every logged-out token is still refused", func(t *testing.T) {
		for i, tok := range revoked {
			if r := mustCall(t, http.MethodGet, verifier+"/auth/verify", tok, ""); r.code != http.StatusUnauthorized {
				t.Errorf("revoked token %d after the upgrade: %d %s", i, r.code, r.body)
			}
		}
		for i, tok := range revokedRefresh {
			if r := mustCall(t, http.MethodPost, issuer+"/auth/refresh", tok, ""); r.code != http.StatusUnauthorized {
				t.Errorf("revoked refresh token %d after the upgrade: %d %s", i, r.code, r.body)
			}
		}
	})
	t.Run("no rotation is skipped or repeated", func(t *testing.T) {
		after := getAuthService(t, key).Status.Keys
		for _, k := range keysBefore {
			i := slices.IndexFunc(after, func(a authv1alpha1.PublishedKey) bool { return a.KeyID == k.KeyID })
			if i < 0 {
				// A retired key leaves the status once its tokens expired: not within this test.
				t.Errorf("key %s (%s) is gone after the upgrade", k.KeyID, k.State)
				continue
			}
			if a := after[i]; a.State != k.State || !a.CreatedAt.Equal(&k.CreatedAt) || (k.ActivatedAt != nil && !a.ActivatedAt.Equal(k.ActivatedAt)) {
				t.Errorf("key %s: before %+v, after %+v", k.KeyID, k, a)
			}
		}
		if len(after) != len(keysBefore) {
			t.Errorf("%d keys after the upgrade, %d before: %+v", len(after), len(keysBefore), after)
		}
	})
}

// removeOperatorAndCRD uninstalls the chart's release from ns and deletes the CRD (and with
// it every AuthService), so that the next install starts from an empty cluster.
func removeOperatorAndCRD(t *testing.T, ns string) {
	t.Helper()
	ctx := context.Background()
	var list authv1alpha1.AuthServiceList
	if err := kube.List(ctx, &list); err == nil {
		for i := range list.Items {
			_ = kube.Delete(ctx, &list.Items[i])
		}
		// The operator's finalizer removes their cluster-scoped objects while it runs.
		poll.Until(t, 2*time.Minute, "every AuthService deleted", func() error {
			if err := kube.List(ctx, &list); err != nil || len(list.Items) > 0 {
				return fmt.Errorf("%d left (%w)", len(list.Items), err)
			}
			return nil
		})
	}
	helm(t, "uninstall", helmRelease, "--namespace", ns, "--wait", "--timeout", "2m")
	crd := &apiextensionsv1.CustomResourceDefinition{ObjectMeta: metav1.ObjectMeta{Name: "authservices.auth.hiringo.tech"}}
	if err := kube.Delete(ctx, crd); err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	poll.Until(t, time.Minute, "the CRD gone", func() error {
		if err := kube.Get(ctx, client.ObjectKeyFromObject(crd), crd); !apierrors.IsNotFound(err) {
			return fmt.Errorf("still there (%w)", err)
		}
		return nil
	})
}
