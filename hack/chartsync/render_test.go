package main

import (
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
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

func TestEmbedAuthServiceSpec_ClosesEveryListedObject(t *testing.T) {
	crd := `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: authservices.auth.hiringo.tech
spec:
  versions:
  - name: v1alpha1
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              server:
                type: object
                properties:
                  replicas:
                    type: integer
              nodeSelector:
                type: object
                additionalProperties:
                  type: string
              tolerations:
                type: array
                items:
                  type: object
                  properties:
                    key:
                      type: string
              extra:
                type: object
                x-kubernetes-preserve-unknown-fields: true
                properties:
                  a:
                    type: string
`
	values := `{"type":"object","properties":{"authService":{"type":"object","additionalProperties":false,"properties":{"spec":{"type":"object"}}}}}`
	out, err := embedAuthServiceSpec([]byte(values), []byte(crd))
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Properties struct {
			AuthService struct {
				Properties struct {
					Spec struct {
						AdditionalProperties any `json:"additionalProperties"`
						Properties           map[string]struct {
							AdditionalProperties any `json:"additionalProperties"`
							Items                *struct {
								AdditionalProperties any `json:"additionalProperties"`
							} `json:"items"`
						} `json:"properties"`
					} `json:"spec"`
				} `json:"properties"`
			} `json:"authService"`
		} `json:"properties"`
	}
	if err := yaml.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	spec := got.Properties.AuthService.Properties.Spec
	if spec.AdditionalProperties != false || spec.Properties["server"].AdditionalProperties != false {
		t.Errorf("spec and spec.server are not closed:\n%s", out)
	}
	if _, isMap := spec.Properties["nodeSelector"].AdditionalProperties.(map[string]any); !isMap {
		t.Errorf("a map's additionalProperties schema was replaced:\n%s", out)
	}
	if spec.Properties["tolerations"].Items == nil || spec.Properties["tolerations"].Items.AdditionalProperties != false {
		t.Errorf("list items are not closed:\n%s", out)
	}
	if spec.Properties["extra"].AdditionalProperties != nil {
		t.Errorf("an object preserving unknown fields was closed:\n%s", out)
	}

	if _, err := embedAuthServiceSpec([]byte(`{"properties":{}}`), []byte(crd)); err == nil {
		t.Error("a values schema without authService was accepted")
	}
}

func TestRenderClusterRoleBindingPolicyTemplate_NamesTheReleasesAccount(t *testing.T) {
	source := `apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: clusterrolebindings
spec:
  matchConditions:
  - name: the-operator
    expression: request.userInfo.username == '` + operatorUser + `'
  validations:
  - expression: 'true'
    message: 'keeps {{ braces }}'
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: clusterrolebindings
spec:
  policyName: clusterrolebindings
  validationActions: [Deny]
`
	tmpl, err := renderClusterRoleBindingPolicyTemplate("policy.yaml", []byte(source))
	if err != nil {
		t.Fatal(err)
	}
	got := string(tmpl)
	for _, want := range []string{
		"{{- if .Values.rbac.create }}",
		chartOperatorUser,
		`policyName: {{ include "auth-operator.fullname" . }}-clusterrolebindings`,
		`keeps {{ "{{" }} braces }}`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the template lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, operatorUser) {
		t.Errorf("the template still names the kustomization's account:\n%s", got)
	}

	if _, err := renderClusterRoleBindingPolicyTemplate("policy.yaml", []byte(strings.ReplaceAll(source, operatorUser, "system:serviceaccount:x:y"))); err == nil {
		t.Error("a policy that does not name the kustomization's account rendered")
	}
}
