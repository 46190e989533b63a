package controllers

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
	"github.com/hiringo/auth-operator/controllers/internal/objects"
	"github.com/hiringo/auth-operator/controllers/managedredis"
)

// appliedObjects are the objects built by every builder whose result goes through apply,
// with a managed Redis and a PodDisruptionBudget, the reconciler's owner reference set.
func appliedObjects(t *testing.T) map[string]client.Object {
	t.Helper()
	as := &authv1alpha1.AuthService{}
	as.Name, as.Namespace, as.UID = "auth", "prod", "uid-1"
	as.Spec.Redis.Managed = &authv1alpha1.ManagedRedisSpec{HighAvailability: &authv1alpha1.RedisHighAvailabilitySpec{}}
	as.Spec.Server.PodDisruptionBudget.Enabled = true
	redis := redisConnection{addresses: []string{"auth-redis:6379"}}
	objects := map[string]client.Object{
		"verifier Deployment":    serverDeployment(as, redis, testImage, 0),
		"issuer Deployment":      issuerDeployment(as, redis, testImage),
		"verifier Service":       serverService(as),
		"issuer Service":         issuerService(as),
		"issuer ServiceAccount":  issuerServiceAccount(as),
		"issuer Role":            issuerRole(as),
		"issuer RoleBinding":     issuerRoleBinding(as),
		"user-logouts ConfigMap": userLogoutsConfigMap(as),
		"public keys Secret":     publicKeysSecret(as, map[string][]byte{"k.pub.pem": []byte("pem")}),
		"JWKS ConfigMap":         jwksConfigMap(as, []byte(`{"keys":[]}`)),
		"store-state ConfigMap":  storeStateConfigMap(as),
		"verifier PDB":           podDisruptionBudget(as, as.ServerName(), objects.AppVerifier, componentServer),
	}
	// Every object the managed Redis applies: one pod with and without persistence, and
	// replicated with its Sentinels.
	single := as.DeepCopy()
	single.Spec.Redis.Managed.HighAvailability = nil
	ephemeral := single.DeepCopy()
	ephemeral.Spec.Redis.Managed.Persistence.Enabled = ptr.To(false)
	for topology, a := range map[string]*authv1alpha1.AuthService{"one Redis pod": single, "one Redis pod without persistence": ephemeral, "replicated Redis": as} {
		for _, obj := range managedredis.Desired(a, managedredis.Observed{Sentinels: &appsv1.StatefulSet{}}, "v1", testImage).Apply {
			objects[fmt.Sprintf("%s: %T %s", topology, obj, obj.GetName())] = obj
		}
	}
	for name, obj := range objects {
		if err := controllerutil.SetControllerReference(as, obj, testScheme); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	// Cluster-scoped: applied without an owner reference.
	objects["issuer ClusterRoleBinding"] = issuerClusterRoleBinding(as)
	return objects
}

// leaves flattens content into its paths and the values at their ends; an empty map or
// list is a value of its own.
func leaves(prefix string, value any, out map[string]any) {
	switch v := value.(type) {
	case map[string]any:
		if len(v) == 0 {
			out[prefix] = v
		}
		for k, nested := range v {
			leaves(prefix+"."+k, nested, out)
		}
	case []any:
		if len(v) == 0 {
			out[prefix] = v
		}
		for i, nested := range v {
			leaves(fmt.Sprintf("%s[%d]", prefix, i), nested, out)
		}
	default:
		out[prefix] = v
	}
}

// unsetByServer says whether a path of a freshly built object is one the apply must not
// send: a status, or a creation timestamp nobody set.
func unsetByServer(path string, value any) bool {
	segments := strings.FieldsFunc(path, func(r rune) bool { return r == '.' || r == '[' })
	return slices.Contains(segments, "status") || (strings.HasSuffix(path, ".creationTimestamp") && value == nil)
}

func TestKeepAppliedFields_SendsWhatTheBuildersSetAndNothingTheServerDoes(t *testing.T) {
	for name, obj := range appliedObjects(t) {
		t.Run(name, func(t *testing.T) {
			content, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
			if err != nil {
				t.Fatal(err)
			}
			built := map[string]any{}
			leaves("", content, built)
			// What the API server adds once the object exists, as a read-modify-apply would carry it.
			metadata := content["metadata"].(map[string]any)
			metadata["resourceVersion"] = "42"
			metadata["uid"] = "uid-2"
			metadata["generation"] = int64(3)
			metadata["creationTimestamp"] = "2026-01-01T00:00:00Z"
			metadata["managedFields"] = []any{map[string]any{"manager": "kubectl"}}
			content["status"] = map[string]any{"observedGeneration": int64(3)}

			if err := keepAppliedFields(content); err != nil {
				t.Fatal(err)
			}
			sent := map[string]any{}
			leaves("", content, sent)
			for path, value := range built {
				if unsetByServer(path, value) {
					if _, ok := sent[path]; ok {
						t.Errorf("%s is sent though nobody set it", path)
					}
					continue
				}
				if got, ok := sent[path]; !ok || !reflect.DeepEqual(got, value) {
					t.Errorf("%s = %v is dropped (sent: %v)", path, value, got)
				}
			}
			for _, path := range []string{".metadata.resourceVersion", ".metadata.uid", ".metadata.generation",
				".metadata.creationTimestamp", ".metadata.managedFields[0].manager", ".status.observedGeneration"} {
				if _, ok := sent[path]; ok {
					t.Errorf("%s, set by the server, is sent", path)
				}
			}
			if len(sent) == 0 || !strings.Contains(fmt.Sprint(sent), "auth.hiringo.tech/authservice") {
				t.Errorf("nothing of the object is sent: %v", sent)
			}
		})
	}
}

func TestKeepPaths_KeepsSubtreesOfPathsOnly(t *testing.T) {
	m := map[string]any{
		"kind":     "X",
		"metadata": map[string]any{"name": "n", "uid": "u", "labels": map[string]any{"a": "b"}},
		"status":   map[string]any{"x": int64(1)},
		"extra":    "e",
	}
	keepPaths(m, [][]string{{"kind"}, {"metadata", "name"}, {"metadata", "labels"}})
	want := map[string]any{"kind": "X", "metadata": map[string]any{"name": "n", "labels": map[string]any{"a": "b"}}}
	if !reflect.DeepEqual(m, want) {
		t.Errorf("kept %v, want %v", m, want)
	}
}
