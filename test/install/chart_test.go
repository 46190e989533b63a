package install

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// allFeaturesValues turns every optional feature of the chart on.
const allFeaturesValues = "test/install/testdata/all-features-values.yaml"

func TestChart_LintStrict(t *testing.T) {
	for _, tc := range []struct {
		name   string
		values []string
	}{
		{"default values", nil},
		{"every feature on", []string{allFeaturesValues}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"lint", "--strict", chartDir, "--kube-version", kubeVersion}
			for _, v := range tc.values {
				args = append(args, "--values", v)
			}
			res := tools.mustRun(t, nil, tools.helm, args...)
			if !strings.Contains(res.stdout, "1 chart(s) linted, 0 chart(s) failed") {
				t.Fatalf("helm lint did not pass:\n%s", res.stdout)
			}
		})
	}
}

// namespacedKinds are the kinds the chart renders into the release namespace.
var namespacedKinds = []string{"ServiceAccount", "Role", "RoleBinding", "Deployment", "Service", "ServiceMonitor", "PrometheusRule", "ConfigMap", "PodDisruptionBudget", "NetworkPolicy", "AuthService"}

// assertStandardLabels checks the labels every object of the chart carries, and that each
// namespaced object names its namespace (so `helm template | kubectl apply` lands where asked).
func assertStandardLabels(t *testing.T, objs []*unstructured.Unstructured, release, namespace string) {
	t.Helper()
	want := map[string]string{
		"helm.sh/chart":                "auth-operator-",
		"app.kubernetes.io/name":       "auth-operator",
		"app.kubernetes.io/instance":   release,
		"app.kubernetes.io/version":    "",
		"app.kubernetes.io/part-of":    "auth-operator",
		"app.kubernetes.io/managed-by": "Helm",
	}
	for _, o := range objs {
		labels := o.GetLabels()
		for key, prefix := range want {
			v, ok := labels[key]
			if !ok || !strings.HasPrefix(v, prefix) {
				t.Errorf("%s %s: label %s=%q, want a value starting with %q", o.GetKind(), o.GetName(), key, v, prefix)
			}
		}
		if slices.Contains(namespacedKinds, o.GetKind()) && o.GetNamespace() != namespace {
			t.Errorf("%s %s is in namespace %q, want the release namespace %q", o.GetKind(), o.GetName(), o.GetNamespace(), namespace)
		}
	}
}

// kinds lists the kinds of objs, one entry per object.
func kinds(objs []*unstructured.Unstructured) []string {
	var out []string
	for _, o := range objs {
		out = append(out, o.GetKind())
	}
	slices.Sort(out)
	return out
}

// chartAppVersion reads the chart's appVersion, the default image tag.
func chartAppVersion(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(tools.root, chartDir, "Chart.yaml"))
	if err != nil {
		t.Fatalf("read Chart.yaml: %v", err)
	}
	var chart struct {
		AppVersion string `json:"appVersion"`
	}
	if err := yaml.Unmarshal(data, &chart); err != nil || chart.AppVersion == "" {
		t.Fatalf("Chart.yaml has no appVersion: %v", err)
	}
	return chart.AppVersion
}

func TestChart_DefaultValues(t *testing.T) {
	objs := decodeObjects(t, tools.helmTemplate(t, "ops", "auth-system", nil))
	assertStandardLabels(t, objs, "ops", "auth-system")

	wantKinds := []string{
		"ClusterRole", "ClusterRole", "ClusterRole", "ClusterRole", "ClusterRole", "ClusterRole",
		"ClusterRoleBinding", "ClusterRoleBinding",
		"CustomResourceDefinition", "Deployment", "Role", "RoleBinding", "Service", "ServiceAccount",
		"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding",
	}
	if got := kinds(objs); !slices.Equal(got, wantKinds) {
		t.Errorf("kinds = %v, want %v (optional features must be off by default)", got, wantKinds)
	}

	crd := single(t, objs, "CustomResourceDefinition")
	if got := crd.GetAnnotations()["helm.sh/resource-policy"]; got != "keep" {
		t.Errorf("CRD helm.sh/resource-policy = %q, want keep while crds.keep is true", got)
	}

	d := deployment(t, objs)
	manager := container(t, &d.Spec.Template.Spec, "manager")
	wantImage := "ghcr.io/hiringo/auth-operator:" + chartAppVersion(t)
	if manager.Image != wantImage {
		t.Errorf("manager image = %q, want %q (the appVersion is the default tag)", manager.Image, wantImage)
	}
	for _, arg := range []string{
		"--authserver-image=" + wantImage,
		"--leader-elect=true",
		"--metrics-bind-address=:8443",
		"--health-probe-bind-address=:8081",
	} {
		if !slices.Contains(manager.Args, arg) {
			t.Errorf("manager args %v lack %q", manager.Args, arg)
		}
	}
	if d.Spec.Template.Spec.ServiceAccountName != single(t, objs, "ServiceAccount").GetName() {
		t.Errorf("the Deployment runs as %q, not as the chart's ServiceAccount", d.Spec.Template.Spec.ServiceAccountName)
	}
	assertRestrictedSecurityContext(t, d)
	if manager.LivenessProbe == nil || manager.ReadinessProbe == nil {
		t.Error("the manager has no liveness or readiness probe")
	}
	if manager.Resources.Requests.Memory().IsZero() || manager.Resources.Limits.Memory().IsZero() {
		t.Error("the manager has no memory request or limit")
	}
}

// assertRestrictedSecurityContext checks the security settings the issue asks of every pod.
func assertRestrictedSecurityContext(t *testing.T, d *appsv1.Deployment) {
	t.Helper()
	pod := d.Spec.Template.Spec.SecurityContext
	if pod == nil || pod.RunAsNonRoot == nil || !*pod.RunAsNonRoot || pod.SeccompProfile == nil || pod.SeccompProfile.Type != "RuntimeDefault" {
		t.Errorf("pod security context %+v: want runAsNonRoot and seccomp RuntimeDefault", pod)
	}
	for _, c := range d.Spec.Template.Spec.Containers {
		sc := c.SecurityContext
		if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
			sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
			sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
			t.Errorf("container %s security context %+v: want no privilege escalation, a read-only root and drop ALL", c.Name, sc)
		}
	}
}

func TestChart_EveryFeatureOn(t *testing.T) {
	objs := decodeObjects(t, tools.helmTemplate(t, "ops", "auth-system", []string{allFeaturesValues}))
	assertStandardLabels(t, objs, "ops", "auth-system")

	for _, kind := range []string{"ServiceMonitor", "PrometheusRule", "ConfigMap", "PodDisruptionBudget", "NetworkPolicy", "AuthService"} {
		single(t, objs, kind)
	}

	d := deployment(t, objs)
	spec := d.Spec.Template.Spec
	manager := container(t, &spec, "manager")
	if manager.Image != "registry.example.com/platform/auth-operator:v9.9.9" {
		t.Errorf("manager image = %q", manager.Image)
	}
	for _, arg := range []string{"--authserver-image=registry.example.com/platform/authserver:v9.9.9", "--zap-log-level=debug"} {
		if !slices.Contains(manager.Args, arg) {
			t.Errorf("manager args %v lack %q", manager.Args, arg)
		}
	}
	if *d.Spec.Replicas != 2 || spec.NodeSelector["kubernetes.io/os"] != "linux" || len(spec.Tolerations) != 1 ||
		spec.Affinity == nil || len(spec.TopologySpreadConstraints) != 1 || spec.PriorityClassName != "system-cluster-critical" ||
		len(spec.ImagePullSecrets) != 1 || len(manager.Env) != 1 {
		t.Errorf("scheduling and pod settings did not reach the Deployment: %+v", spec)
	}
	if d.Spec.Template.Labels["example.com/tier"] != "control-plane" || d.Spec.Template.Annotations["example.com/team"] != "platform" {
		t.Errorf("pod labels/annotations did not reach the pod template: %v %v", d.Spec.Template.Labels, d.Spec.Template.Annotations)
	}
	assertRestrictedSecurityContext(t, d)

	as := single(t, objs, "AuthService")
	if as.GetAnnotations()["helm.sh/resource-policy"] != "keep" {
		t.Error("the AuthService from values is not kept on uninstall")
	}
	if replicas, _, _ := unstructured.NestedInt64(as.Object, "spec", "server", "replicas"); replicas != 3 {
		t.Errorf("AuthService spec.server.replicas = %d, want 3 from values", replicas)
	}

	sm := single(t, objs, "ServiceMonitor")
	selector, _, _ := unstructured.NestedStringMap(sm.Object, "spec", "selector", "matchLabels")
	svc := single(t, objs, "Service")
	for k, v := range selector {
		if svc.GetLabels()[k] != v {
			t.Errorf("the ServiceMonitor selects %s=%s, which the metrics Service lacks", k, v)
		}
	}
}

func TestChart_CRDSwitches(t *testing.T) {
	for _, tc := range []struct {
		name     string
		set      []string
		wantCRD  bool
		wantKeep bool
	}{
		{"enabled and kept", nil, true, true},
		{"enabled, not kept", []string{"crds.keep=false"}, true, false},
		{"disabled", []string{"crds.enabled=false"}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			crds := ofKind(decodeObjects(t, tools.helmTemplate(t, "ops", "auth-system", nil, tc.set...)), "CustomResourceDefinition")
			if got := len(crds) == 1; got != tc.wantCRD {
				t.Fatalf("CRD rendered = %v, want %v", got, tc.wantCRD)
			}
			if tc.wantCRD {
				_, keep := crds[0].GetAnnotations()["helm.sh/resource-policy"]
				if keep != tc.wantKeep {
					t.Errorf("keep annotation present = %v, want %v", keep, tc.wantKeep)
				}
			}
		})
	}
}

func TestChart_ImageDigestWinsOverTag(t *testing.T) {
	digest := "sha256:" + strings.Repeat("ab", 32)
	d := deployment(t, decodeObjects(t, tools.helmTemplate(t, "ops", "auth-system", nil, "image.tag=v1.0.0", "image.digest="+digest)))
	manager := container(t, &d.Spec.Template.Spec, "manager")
	want := "ghcr.io/hiringo/auth-operator@" + digest
	if manager.Image != want || !slices.Contains(manager.Args, "--authserver-image="+want) {
		t.Errorf("image %q args %v, want %q for both", manager.Image, manager.Args, want)
	}
}

func TestChart_MetricsOff(t *testing.T) {
	objs := decodeObjects(t, tools.helmTemplate(t, "ops", "auth-system", nil, "metrics.enabled=false", "metrics.serviceMonitor.enabled=true"))
	if len(ofKind(objs, "Service")) != 0 || len(ofKind(objs, "ServiceMonitor")) != 0 {
		t.Error("metrics.enabled=false still renders the metrics Service or ServiceMonitor")
	}
	manager := container(t, &deployment(t, objs).Spec.Template.Spec, "manager")
	if !slices.Contains(manager.Args, "--metrics-bind-address=0") {
		t.Errorf("manager args %v do not turn metrics off", manager.Args)
	}
}

func TestChart_ValuesTypoIsRejected(t *testing.T) {
	for _, tc := range []struct {
		name, set, want string
	}{
		{"top-level key", "replicaCont=2", "additional properties 'replicaCont' not allowed"},
		{"nested key", "metrics.serviceMonitor.enabeld=true", "at '/metrics/serviceMonitor': additional properties 'enabeld' not allowed"},
		{"security context key", "securityContext.readOnlyRootFilesytem=true", "additional properties 'readOnlyRootFilesytem' not allowed"},
		{"AuthService spec key", "authService.spec.server.replics=3", "at '/authService/spec/server': additional properties 'replics' not allowed"},
		{"AuthService spec enum", "authService.spec.redis.managed.appendFsync=sometimes", "at '/authService/spec/redis/managed/appendFsync'"},
		{"wrong type", "replicaCount=two", "at '/replicaCount'"},
		{"bad enum", "image.pullPolicy=Sometimes", "at '/image/pullPolicy'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := tools.run(t.Context(), nil, tools.helm, "template", "ops", chartDir, "--kube-version", kubeVersion, "--set", tc.set)
			if err == nil {
				t.Fatalf("helm template accepted --set %s", tc.set)
			}
			if !strings.Contains(res.stderr, "values don't meet the specifications of the schema") || !strings.Contains(res.stderr, tc.want) {
				t.Errorf("error does not say what is wrong; want %q in:\n%s", tc.want, res.stderr)
			}
		})
	}
}

func TestChart_SeveralReplicasNeedLeaderElection(t *testing.T) {
	res, err := tools.run(t.Context(), nil, tools.helm, "template", "ops", chartDir, "--kube-version", kubeVersion, "--set", "replicaCount=2", "--set", "leaderElection.enabled=false")
	if err == nil || !strings.Contains(res.stderr, "replicaCount > 1 needs leaderElection.enabled=true") {
		t.Errorf("two managers without leader election were rendered (err %v):\n%s", err, res.stderr)
	}
	objs := decodeObjects(t, tools.helmTemplate(t, "ops", "auth-system", nil, "leaderElection.enabled=false"))
	if manager := container(t, &deployment(t, objs).Spec.Template.Spec, "manager"); !slices.Contains(manager.Args, "--leader-elect=false") {
		t.Errorf("one manager without leader election: args %v", manager.Args)
	}
	if len(ofKind(objs, "Role")) != 0 {
		t.Error("leader election is off but its Role is rendered")
	}
}

func TestChart_RefusesTooOldKubernetes(t *testing.T) {
	res, err := tools.run(t.Context(), nil, tools.helm, "template", "ops", chartDir, "--kube-version", "1.29.9")
	if err == nil || !strings.Contains(res.stderr, "chart requires kubeVersion") {
		t.Errorf("the chart rendered for Kubernetes 1.29, which serves no admissionregistration.k8s.io/v1 ValidatingAdmissionPolicy (err %v):\n%s", err, res.stderr)
	}
}
