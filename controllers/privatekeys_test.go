//go:build !unit

package controllers

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
	"github.com/hiringo/auth-operator/authserver/keyfiles"
)

// privateMarkers are what any trace of a private key would contain: its file name, its PEM
// block, and (from the Secret itself) the PEM of every private key the test saw.
func privateMarkers(t *testing.T, ns string) []string {
	t.Helper()
	markers := []string{".key.pem", "PRIVATE KEY"}
	_, secret := keySet(t, ns, "auth")
	for name, data := range secret.Data {
		if strings.HasSuffix(name, ".key.pem") {
			// The base64 body of the PEM, in case a writer stripped its armour.
			body := strings.Split(string(data), "\n")[1]
			markers = append(markers, body)
		}
	}
	return markers
}

func wantNoPrivateMaterial(t *testing.T, what string, obj any, markers []string) {
	t.Helper()
	raw, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range markers {
		if strings.Contains(string(raw), m) {
			t.Errorf("%s holds private key material (%q)", what, m)
		}
	}
}

// TestVerifier_HoldsNoPrivateKey goes through a creation and a rotation (so the projection
// has held next, active and retired keys), then searches everything the operator wrote that
// a verifier or a reader of the namespace sees: the verifier's Deployment (its volumes and
// every source they name), every ConfigMap, every event and the AuthService's status.
func TestVerifier_HoldsNoPrivateKey(t *testing.T) {
	ns := newNamespace(t)
	createAuthService(t, ns, "auth", shortRotation)
	clk := clocktesting.NewFakePassiveClock(t0)
	r := newDirectReconciler(t, clk, nil)
	reconcileOnce(t, r, ns, "auth")
	markers := privateMarkers(t, ns)
	clk.SetTime(t0.Add(shortInterval))
	reconcileOnce(t, r, ns, "auth")
	markers = append(markers, privateMarkers(t, ns)...)
	set, _ := keySet(t, ns, "auth")
	if len(set.Keys) != 3 {
		t.Fatalf("after a rotation the Secret holds %d keys, want retired, active and next", len(set.Keys))
	}
	waitEvent(t, ns, "auth", corev1.EventTypeNormal, "KeyRotated")

	d := get(t, ns, "auth-authserver", &appsv1.Deployment{})
	pod := d.Spec.Template.Spec
	wantNoPrivateMaterial(t, "the verifier's pod template", d.Spec.Template, markers)
	for _, v := range pod.Volumes {
		switch {
		case v.Secret != nil && v.Secret.SecretName == "auth-signing-keys":
			t.Errorf("the verifier mounts the signing-key Secret (volume %s)", v.Name)
		case v.Projected != nil:
			t.Errorf("the verifier has a projected volume %s the test does not expect", v.Name)
		case v.ConfigMap != nil:
			cm := get(t, ns, v.ConfigMap.Name, &corev1.ConfigMap{})
			wantNoPrivateMaterial(t, "ConfigMap "+cm.Name+" (mounted by the verifier)", cm, markers)
		case v.Secret != nil && v.Secret.SecretName == "auth-public-keys":
			s := get(t, ns, v.Secret.SecretName, &corev1.Secret{})
			for k, data := range s.Data {
				wantNoPrivateMaterial(t, "Secret "+s.Name+" key "+k+" (the public projection, mounted by the verifier)", string(data), markers)
			}
		case v.Secret != nil:
			s := get(t, ns, v.Secret.SecretName, &corev1.Secret{})
			for _, item := range v.Secret.Items {
				wantNoPrivateMaterial(t, "Secret "+s.Name+" key "+item.Key+" (mounted by the verifier)", string(s.Data[item.Key]), markers)
			}
			if len(v.Secret.Items) == 0 {
				t.Errorf("the verifier mounts the whole Secret %s", s.Name)
			}
		}
	}
	for _, c := range pod.Containers {
		for _, e := range c.EnvFrom {
			t.Errorf("the verifier takes environment from %+v", e)
		}
	}

	cms := &corev1.ConfigMapList{}
	if err := k8sClient.List(context.Background(), cms, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	if len(cms.Items) < 2 {
		t.Fatalf("%d ConfigMaps, want at least the JWKS and the public projection", len(cms.Items))
	}
	for _, cm := range cms.Items {
		wantNoPrivateMaterial(t, "ConfigMap "+cm.Name, cm, markers)
	}
	projection := get(t, ns, "auth-public-keys", &corev1.Secret{})
	for _, k := range set.Keys {
		if len(projection.Data[keyfiles.PublicKeyFile(k.ID)]) == 0 {
			t.Errorf("the projection lacks the public key of the %s key %s", k.State, k.ID)
		}
	}

	events := &eventsv1.EventList{}
	if err := k8sClient.List(context.Background(), events, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, e := range events.Items {
		wantNoPrivateMaterial(t, "event "+e.Reason, e, markers)
	}
	as := get(t, ns, "auth", &authv1alpha1.AuthService{})
	wantNoPrivateMaterial(t, "the AuthService's status", as.Status, markers)

	// The signing-key Secret does hold them (the active and next keys and their refresh
	// keys), so the search above is not vacuous.
	_, secret := keySet(t, ns, "auth")
	wantFound := 0
	for name := range secret.Data {
		if strings.HasSuffix(name, ".key.pem") {
			wantFound++
		}
	}
	if wantFound != 4 || len(markers) < 4 {
		t.Fatalf("the Secret holds %d private keys and the search used %d markers", wantFound, len(markers))
	}
}
