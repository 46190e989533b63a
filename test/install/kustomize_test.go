package install

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
)

const (
	installYAML       = "dist/install.yaml"
	operatorNamespace = "auth-operator-system"
)

// copyTree copies the folder src into dst.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return fmt.Errorf("relative path: %w", err)
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("copy: %w", err)
		}
		return os.WriteFile(target, data, 0o644)
	})
}

// configCopy copies config/ into a temporary folder, so a test can run `kustomize edit` on it.
func configCopy(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "config")
	if err := copyTree(filepath.Join(tools.root, "config"), dir); err != nil {
		t.Fatalf("copy config/: %v", err)
	}
	return dir
}

// managerImage returns the manager container's image in a rendered install.
func managerImage(t *testing.T, objs []*unstructured.Unstructured) string {
	t.Helper()
	return container(t, &deployment(t, objs).Spec.Template.Spec, "manager").Image
}

func TestInstallYAML_IsTheBuildOfConfig(t *testing.T) {
	committed, err := os.ReadFile(filepath.Join(tools.root, installYAML))
	if err != nil {
		t.Fatalf("%s: %v (run `make build-installer`)", installYAML, err)
	}
	image := managerImage(t, decodeObjects(t, committed))
	config := configCopy(t)
	if _, err := tools.runIn(t.Context(), filepath.Join(config, "manager"), nil, tools.kustomize, "edit", "set", "image", "controller="+image); err != nil {
		t.Fatal(err)
	}
	built := tools.mustRun(t, nil, tools.kustomize, "build", filepath.Join(config, "default")).stdout
	if !bytes.Equal(committed, []byte(built)) {
		t.Errorf("%s is not the build of config/ (run `make build-installer IMG=%s`)", installYAML, image)
	}
}

func TestInstallYAML_Wiring(t *testing.T) {
	objs := readObjects(t, installYAML)

	ns := single(t, objs, "Namespace")
	if ns.GetName() != operatorNamespace || ns.GetLabels()["pod-security.kubernetes.io/enforce"] != "restricted" {
		t.Errorf("Namespace %s labels %v: want %s enforcing the restricted Pod Security Standard", ns.GetName(), ns.GetLabels(), operatorNamespace)
	}
	for _, o := range objs {
		switch o.GetKind() {
		case "Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding":
		default:
			if o.GetNamespace() != operatorNamespace {
				t.Errorf("%s %s is in namespace %q, want %s", o.GetKind(), o.GetName(), o.GetNamespace(), operatorNamespace)
			}
		}
	}

	d := deployment(t, objs)
	manager := container(t, &d.Spec.Template.Spec, "manager")
	var authServerImage string
	for _, e := range manager.Env {
		if e.Name == "AUTHSERVER_IMAGE" {
			authServerImage = e.Value
		}
	}
	if authServerImage != manager.Image {
		t.Errorf("AUTHSERVER_IMAGE = %q, want the manager's own image %q", authServerImage, manager.Image)
	}
	assertRestrictedSecurityContext(t, d)

	// The manager's ServiceAccount exists and every binding grants it an existing role.
	sa := d.Spec.Template.Spec.ServiceAccountName
	if !slices.ContainsFunc(ofKind(objs, "ServiceAccount"), func(o *unstructured.Unstructured) bool { return o.GetName() == sa }) {
		t.Fatalf("the manager runs as ServiceAccount %q, which %s does not create", sa, installYAML)
	}
	roles := map[string]bool{}
	for _, kind := range []string{"Role", "ClusterRole"} {
		for _, r := range ofKind(objs, kind) {
			roles[kind+"/"+r.GetName()] = true
		}
	}
	boundKinds := map[string]bool{}
	for _, kind := range []string{"RoleBinding", "ClusterRoleBinding"} {
		for _, o := range ofKind(objs, kind) {
			var b rbacv1.RoleBinding
			toTyped(t, o, &b)
			if !roles[b.RoleRef.Kind+"/"+b.RoleRef.Name] {
				t.Errorf("%s %s grants %s %s, which %s does not create", kind, b.Name, b.RoleRef.Kind, b.RoleRef.Name, installYAML)
			}
			for _, s := range b.Subjects {
				if s.Kind == "ServiceAccount" && (s.Name != sa || s.Namespace != operatorNamespace) {
					t.Errorf("%s %s binds ServiceAccount %s/%s, not the manager's %s/%s", kind, b.Name, s.Namespace, s.Name, operatorNamespace, sa)
				}
			}
			boundKinds[kind] = true
		}
	}
	if !boundKinds["RoleBinding"] || !boundKinds["ClusterRoleBinding"] {
		t.Errorf("want the manager bound to a ClusterRole (its controllers) and a Role (leader election), found %v", boundKinds)
	}

	// The manager may bind exactly the ClusterRole it binds to every issuer, and the
	// install creates that ClusterRole under that name with the TokenReview permission.
	var issuerRole *rbacv1.ClusterRole
	var bindable []string
	for _, o := range ofKind(objs, "ClusterRole") {
		var r rbacv1.ClusterRole
		toTyped(t, o, &r)
		if r.Name == "auth-operator-issuer" {
			issuerRole = &r
		}
		for _, rule := range r.Rules {
			if slices.Contains(rule.Verbs, "bind") {
				bindable = append(bindable, rule.ResourceNames...)
				if len(rule.ResourceNames) == 0 {
					t.Errorf("ClusterRole %s may bind any role", r.Name)
				}
			}
		}
	}
	// Creating TokenReviews, and reading the cluster's ServiceAccount issuer discovery (with
	// which the issuer refuses junk before any review): nothing else.
	if issuerRole == nil || len(issuerRole.Rules) != 2 ||
		!slices.Equal(issuerRole.Rules[0].Resources, []string{"tokenreviews"}) || !slices.Equal(issuerRole.Rules[0].Verbs, []string{"create"}) ||
		len(issuerRole.Rules[1].Resources) != 0 || !slices.Equal(issuerRole.Rules[1].Verbs, []string{"get"}) ||
		!slices.Equal(issuerRole.Rules[1].NonResourceURLs, []string{"/.well-known/openid-configuration", "/openid/v1/jwks"}) {
		t.Errorf("issuer ClusterRole = %+v, want auth-operator-issuer allowed to create tokenreviews and get the ServiceAccount issuer discovery only", issuerRole)
	}
	if !slices.Equal(bindable, []string{"auth-operator-issuer"}) {
		t.Errorf("the manager may bind %v, want exactly auth-operator-issuer", bindable)
	}

	// The metrics Service reaches the manager's pods.
	var svc corev1.Service
	toTyped(t, single(t, objs, "Service"), &svc)
	if !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Errorf("the metrics Service selects %v, which the manager's pods (%v) do not match", svc.Spec.Selector, d.Spec.Template.Labels)
	}

	single(t, objs, "CustomResourceDefinition")
}

// optInConfig is a config/ copy whose default overlay also lists the opt-in parts, as
// docs/install.md tells users to do.
func optInConfig(t *testing.T) string {
	t.Helper()
	config := configCopy(t)
	path := filepath.Join(config, "default", "kustomization.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data = bytes.Replace(data, []byte("- ../manager\n"), []byte("- ../manager\n- ../prometheus\n- ../network-policy\n"), 1)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return config
}

func TestOptInParts_BuildIntoTheInstall(t *testing.T) {
	objs := decodeObjects(t, []byte(tools.mustRun(t, nil, tools.kustomize, "build", filepath.Join(optInConfig(t), "default")).stdout))
	d := deployment(t, objs)
	podLabels := labels.Set(d.Spec.Template.Labels)

	var np struct {
		Spec struct {
			PodSelector struct {
				MatchLabels map[string]string `json:"matchLabels"`
			} `json:"podSelector"`
		} `json:"spec"`
	}
	netpol := single(t, objs, "NetworkPolicy")
	toTyped(t, netpol, &np)
	if netpol.GetNamespace() != operatorNamespace || !labels.SelectorFromSet(np.Spec.PodSelector.MatchLabels).Matches(podLabels) {
		t.Errorf("the NetworkPolicy (namespace %q, pods %v) does not guard the manager's pods", netpol.GetNamespace(), np.Spec.PodSelector.MatchLabels)
	}

	sm := single(t, objs, "ServiceMonitor")
	selector, _, _ := unstructured.NestedStringMap(sm.Object, "spec", "selector", "matchLabels")
	svc := single(t, objs, "Service")
	if sm.GetNamespace() != operatorNamespace || !labels.SelectorFromSet(selector).Matches(labels.Set(svc.GetLabels())) {
		t.Errorf("the ServiceMonitor (namespace %q, selector %v) does not select the metrics Service %v", sm.GetNamespace(), selector, svc.GetLabels())
	}
}
