package install

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

const (
	authServiceCRD    = "authservices.auth.hiringo.tech"
	serviceMonitorCRD = "servicemonitors.monitoring.coreos.com"
	// deletionTimeout bounds the wait for the API server to finish creating or deleting a CRD.
	deletionTimeout = 60 * time.Second
)

var authServiceGVK = schema.GroupVersionKind{Group: "auth.hiringo.tech", Version: "v1alpha1", Kind: "AuthService"}

// createNamespace creates a namespace with labels.
func createNamespace(t *testing.T, name string, labels map[string]string) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	if err := k8sClient.Create(t.Context(), ns); err != nil {
		t.Fatalf("create namespace %s: %v", name, err)
	}
}

// applyServerSide applies manifests with `kubectl apply --server-side` and checks that the API
// server accepted every object.
func applyServerSide(t *testing.T, manifests []byte) {
	t.Helper()
	want := len(decodeObjects(t, manifests))
	res := tools.mustRun(t, manifests, tools.kubectl, "apply", "--server-side", "-f", "-")
	if got := strings.Count(res.stdout, " serverside-applied"); got != want {
		t.Fatalf("kubectl applied %d of %d objects:\n%s%s", got, want, res.stdout, res.stderr)
	}
	if strings.Contains(res.stderr, "Warning:") {
		t.Errorf("the API server warned:\n%s", res.stderr)
	}
}

// getObject reports whether an object exists.
func getObject(t *testing.T, gvk schema.GroupVersionKind, namespace, name string) bool {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	err := k8sClient.Get(t.Context(), client.ObjectKey{Namespace: namespace, Name: name}, u)
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatalf("get %s %s/%s: %v", gvk.Kind, namespace, name, err)
	}
	return err == nil
}

// crd returns a CRD, or nil when it does not exist.
func crd(t *testing.T, name string) *apiextensionsv1.CustomResourceDefinition {
	t.Helper()
	var c apiextensionsv1.CustomResourceDefinition
	err := k8sClient.Get(t.Context(), client.ObjectKey{Name: name}, &c)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		t.Fatalf("get CRD %s: %v", name, err)
	}
	return &c
}

// waitCRDGone waits until the API server has finished deleting a CRD (and its objects).
func waitCRDGone(ctx context.Context, t *testing.T, name string) {
	t.Helper()
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, deletionTimeout, true, func(ctx context.Context) (bool, error) {
		var c apiextensionsv1.CustomResourceDefinition
		err := k8sClient.Get(ctx, client.ObjectKey{Name: name}, &c)
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, err
	})
	if err != nil {
		t.Fatalf("CRD %s is still there after %s: %v", name, deletionTimeout, err)
	}
}

// deleteCRD deletes a CRD and waits until it is gone.
func deleteCRD(ctx context.Context, t *testing.T, name string) {
	t.Helper()
	c := &apiextensionsv1.CustomResourceDefinition{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := k8sClient.Delete(ctx, c); err != nil && !apierrors.IsNotFound(err) {
		t.Fatalf("delete CRD %s: %v", name, err)
	}
	waitCRDGone(ctx, t, name)
}

// deleteCRDAfterwardsIfNew deletes a CRD when the test ends if it does not exist yet, so the
// test leaves the cluster as it found it: Helm will not install a CRD that kubectl created.
func deleteCRDAfterwardsIfNew(t *testing.T, name string) {
	t.Helper()
	if crd(t, name) != nil {
		return
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), deletionTimeout)
		defer cancel()
		deleteCRD(ctx, t, name)
	})
}

// waitCRDEstablished waits until the API server serves a CRD's kind.
func waitCRDEstablished(t *testing.T, name string) {
	t.Helper()
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, deletionTimeout, true, func(ctx context.Context) (bool, error) {
		var c apiextensionsv1.CustomResourceDefinition
		if err := k8sClient.Get(ctx, client.ObjectKey{Name: name}, &c); err != nil {
			return false, client.IgnoreNotFound(err)
		}
		for _, cond := range c.Status.Conditions {
			if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("CRD %s is not established after %s: %v", name, deletionTimeout, err)
	}
}

// helm runs helm against the test API server.
func helm(t *testing.T, args ...string) result {
	t.Helper()
	return tools.mustRun(t, nil, tools.helm, args...)
}

// The install paths share one API server, and CRDs are cluster-wide, so the steps run in order:
// Helm first (it refuses to adopt objects it did not create), then kubectl.
func TestInstallOnAPIServer(t *testing.T) {
	applyServerSide(t, readFile(t, "test/install/testdata/servicemonitor-crd.yaml"))
	applyServerSide(t, readFile(t, "test/install/testdata/prometheusrule-crd.yaml"))

	steps := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"helm install and uninstall with crds.keep=false removes the CRD", helmInstallUninstallWithoutKeep},
		{"helm install, upgrade with every feature on, uninstall keeps the CRD", helmInstallUpgradeUninstall},
		{"the rendered chart applies server-side", renderedChartAppliesServerSide},
		{"config/crd/bases applies server-side", crdBasesApplyServerSide},
		{"helm install with crds.enabled=false over those CRDs creates an AuthService at once", helmInstallWithoutCRDs},
		{"dist/install.yaml applies server-side", installYAMLAppliesServerSide},
		{"the manager runs with dist/install.yaml's arguments and RBAC", installYAMLManagerReconciles},
		{"the opt-in parts apply server-side", optInPartsApplyServerSide},
	}
	for _, step := range steps {
		if !t.Run(step.name, step.run) {
			t.Fatalf("step %q failed; the later steps depend on it", step.name)
		}
	}
}

// helmInstallUninstallWithoutKeep checks that crds.keep=false lets helm uninstall delete the CRD.
func helmInstallUninstallWithoutKeep(t *testing.T) {
	helm(t, "install", "nokeep", chartDir, "--namespace", "helm-nokeep", "--create-namespace", "--set", "crds.keep=false")
	c := crd(t, authServiceCRD)
	if c == nil {
		t.Fatal("helm install did not create the AuthService CRD")
	}
	if _, keep := c.Annotations["helm.sh/resource-policy"]; keep {
		t.Error("the CRD is annotated keep although crds.keep=false")
	}
	if !getObject(t, schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}, "helm-nokeep", "nokeep-auth-operator") {
		t.Error("helm install did not create the manager Deployment")
	}
	helm(t, "uninstall", "nokeep", "--namespace", "helm-nokeep")
	waitCRDGone(t.Context(), t, authServiceCRD)
}

// helmInstallUpgradeUninstall runs the Helm commands of docs/install.md.
func helmInstallUpgradeUninstall(t *testing.T) {
	const (
		release = "auth-operator"
		ns      = operatorNamespace
	)
	kubectl := func(args ...string) { tools.mustRun(t, nil, tools.kubectl, args...) }
	kubectl("create", "namespace", ns)
	kubectl("label", "namespace", ns, "pod-security.kubernetes.io/enforce=restricted")

	// Helm maps every object of a release before it creates any, so an AuthService cannot come
	// in the same first install as its CRD: the chart documents the two steps tested here.
	res, err := tools.run(t.Context(), nil, tools.helm, "install", release, chartDir, "--namespace", ns, "--values", allFeaturesValues)
	if err == nil {
		t.Fatal("a first install with authService.create=true succeeded; update the chart's notes on authService.create")
	}
	if !strings.Contains(res.stderr, "ensure CRDs are installed first") {
		t.Errorf("the error does not tell the user what to do:\n%s", res.stderr)
	}

	notes := helm(t, "install", release, chartDir, "--namespace", ns).stdout
	if !strings.Contains(notes, "kubectl -n default wait --for=condition=Ready authservice/auth") {
		t.Errorf("the install notes do not show how to wait for an AuthService:\n%s", notes)
	}
	helm(t, "upgrade", release, chartDir, "--namespace", ns, "--values", allFeaturesValues)
	for _, o := range []struct {
		gvk  schema.GroupVersionKind
		name string
	}{
		{authServiceGVK, "auth"},
		{schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}, release},
		{schema.GroupVersionKind{Group: "monitoring.coreos.com", Version: "v1", Kind: "ServiceMonitor"}, release},
		{schema.GroupVersionKind{Group: "monitoring.coreos.com", Version: "v1", Kind: "PrometheusRule"}, release},
		{schema.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}, release + "-dashboard"},
		{schema.GroupVersionKind{Group: "policy", Version: "v1", Kind: "PodDisruptionBudget"}, release},
		{schema.GroupVersionKind{Group: "networking.k8s.io", Version: "v1", Kind: "NetworkPolicy"}, release},
	} {
		if !getObject(t, o.gvk, ns, o.name) {
			t.Errorf("after the upgrade there is no %s %s/%s", o.gvk.Kind, ns, o.name)
		}
	}
	// A second upgrade with the same values changes nothing and must succeed too.
	helm(t, "upgrade", release, chartDir, "--namespace", ns, "--values", allFeaturesValues)
	if status := helm(t, "status", release, "--namespace", ns).stdout; !strings.Contains(status, "REVISION: 3") || !strings.Contains(status, "STATUS: deployed") {
		t.Errorf("helm status after two upgrades:\n%s", status)
	}

	helm(t, "uninstall", release, "--namespace", ns)
	c := crd(t, authServiceCRD)
	if c == nil || c.DeletionTimestamp != nil {
		t.Fatal("helm uninstall deleted the AuthService CRD although crds.keep=true")
	}
	if !getObject(t, authServiceGVK, ns, "auth") {
		t.Error("helm uninstall deleted the AuthService although authService.keep=true")
	}
	if getObject(t, schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}, ns, release) {
		t.Error("helm uninstall left the manager Deployment")
	}
}

// renderedChartAppliesServerSide applies `helm template` output, default and with every feature
// on, with kubectl instead of Helm.
func renderedChartAppliesServerSide(t *testing.T) {
	// Start from a cluster without the CRD Helm kept, so kubectl creates everything itself.
	deleteCRD(t.Context(), t, authServiceCRD)
	for _, tc := range []struct {
		release, namespace string
		values             []string
	}{
		{"plain", "rendered-default", nil},
		{"full", "rendered-full", []string{allFeaturesValues}},
	} {
		createNamespace(t, tc.namespace, nil)
		applyServerSide(t, tools.helmTemplate(t, tc.release, tc.namespace, tc.values))
	}
	if !getObject(t, authServiceGVK, "rendered-full", "auth") {
		t.Error("the AuthService of the rendered chart was not created")
	}
}

// crdBasesApplyServerSide applies the CRDs alone, as docs/install.md shows.
func crdBasesApplyServerSide(t *testing.T) {
	res := tools.mustRun(t, nil, tools.kubectl, "apply", "--server-side", "-f", "config/crd/bases")
	if !strings.Contains(res.stdout, authServiceCRD+" serverside-applied") {
		t.Errorf("kubectl apply -f config/crd/bases:\n%s", res.stdout)
	}
}

// installYAMLAppliesServerSide applies dist/install.yaml exactly as docs/install.md shows.
func installYAMLAppliesServerSide(t *testing.T) {
	res := tools.mustRun(t, nil, tools.kubectl, "apply", "--server-side", "-f", installYAML)
	if got, want := strings.Count(res.stdout, " serverside-applied"), len(readObjects(t, installYAML)); got != want {
		t.Fatalf("kubectl applied %d of %d objects:\n%s%s", got, want, res.stdout, res.stderr)
	}
	var ns corev1.Namespace
	if err := k8sClient.Get(t.Context(), client.ObjectKey{Name: operatorNamespace}, &ns); err != nil {
		t.Fatalf("dist/install.yaml did not create namespace %s: %v", operatorNamespace, err)
	}
}

// optInPartsApplyServerSide applies config/default with the ServiceMonitor and NetworkPolicy added.
func optInPartsApplyServerSide(t *testing.T) {
	config := optInConfig(t)
	applyServerSide(t, []byte(tools.mustRun(t, nil, tools.kustomize, "build", filepath.Join(config, "default")).stdout))
	for _, o := range []struct {
		gvk  schema.GroupVersionKind
		name string
	}{
		{schema.GroupVersionKind{Group: "monitoring.coreos.com", Version: "v1", Kind: "ServiceMonitor"}, "auth-operator-controller-manager-metrics-monitor"},
		{schema.GroupVersionKind{Group: "networking.k8s.io", Version: "v1", Kind: "NetworkPolicy"}, "auth-operator-allow-metrics-traffic"},
	} {
		if !getObject(t, o.gvk, operatorNamespace, o.name) {
			t.Errorf("there is no %s %s/%s", o.gvk.Kind, operatorNamespace, o.name)
		}
	}
}

// installYAMLManagerReconciles runs the real manager with the arguments and environment of
// dist/install.yaml's Deployment, as its ServiceAccount, and has it reconcile the sample.
func installYAMLManagerReconciles(t *testing.T) {
	d := deployment(t, readObjects(t, installYAML))
	manager := container(t, &d.Spec.Template.Spec, "manager")
	env := slices.Clone(tools.env)
	var serverImage string
	for _, e := range manager.Env {
		if e.Name == "AUTHSERVER_IMAGE" {
			serverImage = e.Value
		}
		if e.ValueFrom != nil {
			t.Fatalf("env %s comes from %+v: teach this test to resolve it", e.Name, e.ValueFrom)
		}
		env = append(env, e.Name+"="+e.Value)
	}
	account := managerAccount(operatorNamespace, d.Spec.Template.Spec.ServiceAccountName)
	m := startManager(t, managerBinary(t), manager.Args, env, account, operatorNamespace)
	assertServesAndLeads(t, m, operatorNamespace)
	assertReachesOnlyItsClusterRoleBindings(t, account)
	assertMetricsNeedTheReaderRole(t, m, operatorNamespace, "auth-operator-metrics-reader")
	assertReconcilesSample(t, m, "install-sample", serverImage)
}

// helmInstallWithoutCRDs installs the chart beside CRDs applied with kubectl: with the CRD
// already served, the first install may create an AuthService too, and uninstalling leaves the
// CRD that Helm never owned.
func helmInstallWithoutCRDs(t *testing.T) {
	const ns = "helm-without-crds"
	notes := helm(t, "install", "nocrds", chartDir, "--namespace", ns, "--create-namespace",
		"--set", "crds.enabled=false", "--set", "authService.create=true",
		// The rendered charts applied before created the cluster's one issuer ClusterRole.
		"--set", "rbac.createIssuerClusterRole=false").stdout
	if !strings.Contains(notes, "kubectl apply --server-side -f config/crd/bases") {
		t.Errorf("the notes do not say where the CRD comes from:\n%s", notes)
	}
	if !getObject(t, authServiceGVK, ns, "auth") {
		t.Error("the first install did not create the AuthService")
	}
	helm(t, "uninstall", "nocrds", "--namespace", ns)
	if c := crd(t, authServiceCRD); c == nil || c.DeletionTimestamp != nil {
		t.Error("helm uninstall deleted a CRD the release did not own")
	}
}
