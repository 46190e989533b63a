package main

import (
	"strings"
	"testing"
)

const crdWithTemplateText = `---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  annotations:
    controller-gen.kubebuilder.io/version: v0.23.0
  name: widgets.example.com
spec:
  group: example.com
  names:
    kind: Widget
    plural: widgets
  scope: Namespaced
  versions:
  - name: v1
    schema:
      openAPIV3Schema:
        description: 'Renders {{ .Name }} as is.'
        type: object
    served: true
    storage: true
`

func TestRenderCRDTemplate_GatesKeepsAndEscapes(t *testing.T) {
	name, tmpl, err := renderCRDTemplate("config/crd/bases/widgets.yaml", []byte(crdWithTemplateText))
	if err != nil {
		t.Fatal(err)
	}
	if name != "widgets.example.com" {
		t.Errorf("name = %q", name)
	}
	out := string(tmpl)
	for _, want := range []string{
		"{{- if .Values.crds.enabled }}\n",
		"{{- if .Values.crds.keep }}\n    helm.sh/resource-policy: keep\n",
		`{{- include "auth-operator.labels" . | nindent 4 }}`,
		"controller-gen.kubebuilder.io/version: v0.23.0\n",
		`Renders {{ "{{" }} .Name }} as is.`,
		"from config/crd/bases/widgets.yaml",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("template lacks %q:\n%s", want, out)
		}
	}
	if !strings.HasSuffix(out, "{{- end }}\n") {
		t.Errorf("template does not close the crds.enabled block:\n%s", out)
	}
}

func TestRenderCRDTemplate_RejectsOtherInput(t *testing.T) {
	for _, tc := range []struct{ name, input, want string }{
		{"not a CRD", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n", "want an apiextensions.k8s.io/v1 CustomResourceDefinition"},
		{"two documents", crdWithTemplateText + crdWithTemplateText, "found 2 documents"},
		{"no spec", "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: x\n", "no name or no spec"},
		{"not YAML", "spec: [", "document 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := renderCRDTemplate("in.yaml", []byte(tc.input))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestRenderManagerRoleTemplate(t *testing.T) {
	role := "---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: manager-role\nrules:\n- apiGroups:\n  - \"\"\n  resources:\n  - secrets\n  verbs:\n  - get\n"
	tmpl, err := renderManagerRoleTemplate("config/rbac/role.yaml", []byte(role))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"{{- if .Values.rbac.create }}", `name: {{ include "auth-operator.fullname" . }}-manager`, "  - apiGroups:\n    - \"\"\n    resources:\n    - secrets\n"} {
		if !strings.Contains(string(tmpl), want) {
			t.Errorf("template lacks %q:\n%s", want, tmpl)
		}
	}

	for _, tc := range []struct{ name, input, want string }{
		{"namespaced Role", strings.Replace(role, "kind: ClusterRole", "kind: Role", 1), "expects only a ClusterRole"},
		{"no rules", "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: manager-role\n", "no ClusterRole rules"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := renderManagerRoleTemplate("role.yaml", []byte(tc.input))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}
