package controllers

import (
	"maps"
	"reflect"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
	"github.com/hiringo/auth-operator/internal/keylifecycle"
)

// These build the key objects from values alone; no API server is involved.

func keyObjectsAuthService() *authv1alpha1.AuthService {
	return &authv1alpha1.AuthService{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "auth"}}
}

// wantKeyLabels are the labels every key object carries, spelled out so a change to
// objects.Labels() shows here: the manager caches only objects with the managed-by label.
func wantKeyLabels(component string) map[string]string {
	return map[string]string{
		"app.kubernetes.io/managed-by":  "auth-operator",
		"app.kubernetes.io/name":        "authserver",
		"app.kubernetes.io/instance":    "auth",
		"app.kubernetes.io/component":   component,
		"auth.hiringo.tech/authservice": "auth",
	}
}

func TestSigningKeysSecret_CarriesFilesAndRecord(t *testing.T) {
	files := map[string][]byte{"keyset.json": []byte("{}"), "k.key.pem": []byte("pem")}
	for _, tc := range []struct {
		name   string
		record keylifecycle.Record
		want   map[string]string
	}{
		{"nothing recorded", keylifecycle.Record{}, map[string]string{}},
		{"handled request", keylifecycle.Record{HandledRequest: "r1"},
			map[string]string{"auth.hiringo.tech/last-rotation-request": "r1"}},
		{"handled request and lost key", keylifecycle.Record{HandledRequest: "r1", LostKeyID: "kid"},
			map[string]string{"auth.hiringo.tech/last-rotation-request": "r1", "auth.hiringo.tech/keys-lost": "kid"}},
	} {
		s := signingKeysSecret(keyObjectsAuthService(), files, tc.record)
		if s.Namespace != "team" || s.Name != "auth-signing-keys" || s.Type != corev1.SecretTypeOpaque {
			t.Errorf("%s: Secret %s/%s type %q", tc.name, s.Namespace, s.Name, s.Type)
		}
		if !maps.Equal(s.Labels, wantKeyLabels("signing-keys")) {
			t.Errorf("%s: labels %v", tc.name, s.Labels)
		}
		if !maps.Equal(s.Annotations, tc.want) {
			t.Errorf("%s: annotations %v, want %v", tc.name, s.Annotations, tc.want)
		}
		if len(s.Data) != 2 || string(s.Data["keyset.json"]) != "{}" || string(s.Data["k.key.pem"]) != "pem" {
			t.Errorf("%s: data %v", tc.name, s.Data)
		}
		if len(s.OwnerReferences) != 0 {
			t.Errorf("%s: the builder set owners %v; the writer does", tc.name, s.OwnerReferences)
		}
	}
}

// TestPublicKeysSecret_HoldsTheProjection: the public projection is a Secret (writing it
// takes the rights writing the private keys takes), labelled as the operator's.
func TestPublicKeysSecret_HoldsTheProjection(t *testing.T) {
	as := keyObjectsAuthService()
	for _, tc := range []struct {
		name  string
		files map[string][]byte
	}{
		{"public keys", map[string][]byte{"keyset.json": []byte("{}\n"), "k.pub.pem": []byte("pub")}},
		{"empty projection", nil},
	} {
		s := publicKeysSecret(as, tc.files)
		if s.Namespace != "team" || s.Name != "auth-public-keys" || s.Type != corev1.SecretTypeOpaque {
			t.Errorf("%s: Secret %s/%s type %q", tc.name, s.Namespace, s.Name, s.Type)
		}
		if !maps.Equal(s.Labels, wantKeyLabels("public-keys")) {
			t.Errorf("%s: labels %v", tc.name, s.Labels)
		}
		if !maps.EqualFunc(s.Data, tc.files, func(a, b []byte) bool { return string(a) == string(b) }) {
			t.Errorf("%s: data %v, want %v", tc.name, s.Data, tc.files)
		}
	}
}

func TestKeyConfigMaps_HoldTheJWKS(t *testing.T) {
	as := keyObjectsAuthService()
	for _, tc := range []struct {
		name      string
		cm        *corev1.ConfigMap
		wantName  string
		component string
		wantData  map[string]string
	}{
		{"JWKS", jwksConfigMap(as, []byte(`{"keys":[]}`)),
			"auth-jwks", "jwks", map[string]string{"jwks.json": `{"keys":[]}`}},
	} {
		if tc.cm.Namespace != "team" || tc.cm.Name != tc.wantName {
			t.Errorf("%s: ConfigMap %s/%s, want team/%s", tc.name, tc.cm.Namespace, tc.cm.Name, tc.wantName)
		}
		if !maps.Equal(tc.cm.Labels, wantKeyLabels(tc.component)) {
			t.Errorf("%s: labels %v", tc.name, tc.cm.Labels)
		}
		if !maps.Equal(tc.cm.Data, tc.wantData) || len(tc.cm.BinaryData) != 0 {
			t.Errorf("%s: data %v binary %v, want %v", tc.name, tc.cm.Data, tc.cm.BinaryData, tc.wantData)
		}
	}
}

func TestKeyPolicy_ReadsTheSpec(t *testing.T) {
	for _, tc := range []struct {
		name           string
		spec           func(*authv1alpha1.AuthServiceSpec)
		minPublishTime time.Duration
		want           keylifecycle.Policy
	}{
		{"empty spec", func(*authv1alpha1.AuthServiceSpec) {}, 0, keylifecycle.Policy{Revoked: []string{}}},
		{"every field", func(s *authv1alpha1.AuthServiceSpec) {
			s.SigningKeys.RotationInterval = metav1.Duration{Duration: 24 * time.Hour}
			s.SigningKeys.RevokedKeyIDs = []authv1alpha1.KeyID{"a", "b"}
			s.Tokens.MaxLifetime = metav1.Duration{Duration: 15 * time.Minute}
			s.Tokens.RefreshLifetime = metav1.Duration{Duration: 720 * time.Hour}
			s.Tokens.Leeway = metav1.Duration{Duration: 30 * time.Second}
		}, 2 * time.Minute, keylifecycle.Policy{
			RotationInterval: 24 * time.Hour,
			MaxTokenLifetime: 15 * time.Minute,
			RefreshLifetime:  720 * time.Hour,
			Leeway:           30 * time.Second,
			Revoked:          []string{"a", "b"},
			MinPublishTime:   2 * time.Minute,
		}},
	} {
		as := keyObjectsAuthService()
		tc.spec(&as.Spec)
		got := keyPolicy(as, tc.minPublishTime)
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: keyPolicy = %+v, want %+v", tc.name, got, tc.want)
		}
	}
}
