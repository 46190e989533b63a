package install

import (
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestChartTemplates_MatchTheirSources(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is not on PATH: %v", err)
	}
	if _, err := tools.run(t.Context(), nil, goTool, "run", "./hack/chartsync", "-check"); err != nil {
		t.Fatal(err)
	}
}

// The generator aside, what Helm renders must be what controller-gen wrote.
func TestChartCRDs_RenderAsConfigCRDBases(t *testing.T) {
	rendered := ofKind(decodeObjects(t, tools.helmTemplate(t, "ops", "auth-system", nil)), "CustomResourceDefinition")
	byName := map[string]map[string]any{}
	for _, crd := range rendered {
		byName[crd.GetName()] = crd.Object["spec"].(map[string]any)
	}
	files, err := filepath.Glob(filepath.Join(tools.root, "config/crd/bases/*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var bases []*unstructured.Unstructured
	for _, f := range files {
		bases = append(bases, readObjects(t, filepath.Join("config/crd/bases", filepath.Base(f)))...)
	}
	if len(bases) == 0 {
		t.Fatal("no CRD in config/crd/bases: run `make manifests`")
	}
	for _, base := range bases {
		spec, ok := byName[base.GetName()]
		if !ok {
			t.Errorf("the chart does not render CRD %s: run `make chart-crds`", base.GetName())
			continue
		}
		if !reflect.DeepEqual(spec, base.Object["spec"]) {
			t.Errorf("the chart's CRD %s differs from config/crd/bases: run `make chart-crds`", base.GetName())
		}
		delete(byName, base.GetName())
	}
	for name := range byName {
		t.Errorf("the chart renders CRD %s, which config/crd/bases lacks: run `make chart-crds`", name)
	}
}

func TestChartManagerRole_GrantsWhatTheMarkersAsk(t *testing.T) {
	var rendered []any
	for _, role := range ofKind(decodeObjects(t, tools.helmTemplate(t, "ops", "auth-system", nil)), "ClusterRole") {
		if role.GetName() == "ops-auth-operator-manager" {
			rendered = role.Object["rules"].([]any)
		}
	}
	if rendered == nil {
		t.Fatal("the chart renders no ops-auth-operator-manager ClusterRole: run `make chart-crds`")
	}
	want := single(t, readObjects(t, "config/rbac/role.yaml"), "ClusterRole").Object["rules"]
	if !reflect.DeepEqual(rendered, want) {
		t.Errorf("the manager ClusterRole differs from config/rbac/role.yaml: run `make chart-crds`\nchart: %v\nconfig: %v", rendered, want)
	}
}

// The chart writes the rest of its RBAC by hand; it must grant what config/rbac grants.
func TestChartRoles_GrantWhatConfigRBACGrants(t *testing.T) {
	rendered := map[string]*unstructured.Unstructured{}
	for _, o := range decodeObjects(t, tools.helmTemplate(t, "ops", "auth-system", nil)) {
		if o.GetKind() == "Role" || o.GetKind() == "ClusterRole" {
			rendered[o.GetKind()+"/"+o.GetName()] = o
		}
	}
	aggregation := func(o *unstructured.Unstructured) map[string]string {
		out := map[string]string{}
		for k, v := range o.GetLabels() {
			if strings.HasPrefix(k, "rbac.authorization.k8s.io/aggregate-to-") {
				out[k] = v
			}
		}
		return out
	}
	for chartRole, configFile := range map[string]string{
		"Role/ops-auth-operator-leader-election":           "config/rbac/leader_election_role.yaml",
		"ClusterRole/ops-auth-operator-metrics-auth":       "config/rbac/metrics_auth_role.yaml",
		"ClusterRole/ops-auth-operator-metrics-reader":     "config/rbac/metrics_reader_role.yaml",
		"ClusterRole/ops-auth-operator-authservice-editor": "config/rbac/authservice_editor_role.yaml",
		"ClusterRole/ops-auth-operator-authservice-viewer": "config/rbac/authservice_viewer_role.yaml",
		// Bound by the operator by this fixed name, so it has no release prefix.
		"ClusterRole/auth-operator-issuer": "config/rbac/issuer_role.yaml",
	} {
		got, ok := rendered[chartRole]
		if !ok {
			t.Errorf("the chart renders no %s", chartRole)
			continue
		}
		want := readObjects(t, configFile)
		if len(want) != 1 {
			t.Fatalf("%s: want one role, found %d", configFile, len(want))
		}
		if !reflect.DeepEqual(got.Object["rules"], want[0].Object["rules"]) {
			t.Errorf("%s grants other rules than %s:\nchart: %v\nconfig: %v", chartRole, configFile, got.Object["rules"], want[0].Object["rules"])
		}
		if !reflect.DeepEqual(aggregation(got), aggregation(want[0])) {
			t.Errorf("%s aggregates into %v, %s into %v", chartRole, aggregation(got), configFile, aggregation(want[0]))
		}
	}
}
