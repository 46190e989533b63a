package controllers

import (
	"bytes"
	"context"
	"maps"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
	"github.com/hiringo/auth-operator/controllers/internal/objects"
)

// TestForeignObjects_AreRefusedNotAdopted: a hand-made Service and Secret with the names the
// operator would use are neither taken over nor retried every second: the condition and an
// event name them, and the pass comes back after a minute.
func TestForeignObjects_AreRefusedNotAdopted(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	r := newDirectReconciler(t, clocktesting.NewFakePassiveClock(t0), nil)
	handMade := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web-authserver"},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "legacy-web"},
			Ports:    []corev1.ServicePort{{Name: "web", Port: 8000, TargetPort: intstr.FromInt32(8000)}},
		},
	}
	if err := k8sClient.Create(ctx, handMade); err != nil {
		t.Fatal(err)
	}
	createSecret(t, ns, "auth-redis", map[string][]byte{"password": []byte("someone-elses-password-0123456789")})
	createAuthService(t, ns, "web", externalRedis)
	createAuthService(t, ns, "auth", nil)

	for _, tc := range []struct {
		name, condition, object string
	}{
		{"web", authv1alpha1.ServerReadyCondition, "Service web-authserver"},
		{"auth", authv1alpha1.RedisReadyCondition, "Secret auth-redis"},
	} {
		res, err := r.Reconcile(ctx, request(ns, tc.name))
		if err != nil {
			t.Fatalf("%s: Reconcile: %v", tc.name, err)
		}
		if res.RequeueAfter != foreignRetry {
			t.Errorf("%s: RequeueAfter = %s, want %s (not a tight retry loop)", tc.name, res.RequeueAfter, foreignRetry)
		}
		c := condition(get(t, ns, tc.name, &authv1alpha1.AuthService{}), tc.condition)
		if c.Status != metav1.ConditionFalse || c.Reason != authv1alpha1.ReasonForeignObject || !strings.Contains(c.Message, tc.object+" already exists") {
			t.Errorf("%s: %s = %s %s %q", tc.name, tc.condition, c.Status, c.Reason, c.Message)
		}
		waitEvent(t, ns, tc.name, corev1.EventTypeWarning, authv1alpha1.ReasonForeignObject, tc.object)
	}
	svc := get(t, ns, "web-authserver", &corev1.Service{})
	if len(svc.OwnerReferences) != 0 || svc.Spec.Selector["app"] != "legacy-web" || len(svc.Spec.Ports) != 1 || svc.Labels[objects.ManagedByLabel] != "" {
		t.Errorf("the hand-made Service was taken over: owners %v, selector %v, ports %v, labels %v", svc.OwnerReferences, svc.Spec.Selector, svc.Spec.Ports, svc.Labels)
	}
	for _, f := range svc.ManagedFields {
		if f.Manager == fieldOwner {
			t.Errorf("the operator owns fields of the hand-made Service: %+v", f)
		}
	}
	sec := get(t, ns, "auth-redis", &corev1.Secret{})
	if len(sec.OwnerReferences) != 0 || string(sec.Data["password"]) != "someone-elses-password-0123456789" || len(sec.Data) != 1 {
		t.Errorf("the hand-made Secret was taken over: owners %v, keys %d", sec.OwnerReferences, len(sec.Data))
	}
	// Once the foreign object is gone, the operator creates its own.
	if err := k8sClient.Delete(ctx, handMade); err != nil {
		t.Fatal(err)
	}
	reconcileOnce(t, r, ns, "web")
	if svc := get(t, ns, "web-authserver", &corev1.Service{}); !metav1.IsControlledBy(svc, get(t, ns, "web", &authv1alpha1.AuthService{})) {
		t.Error("the operator's Service was not created after the foreign one went")
	}
}

// TestTamperedObjects_AreRepairedNotCalledForeign: an object the operator created whose
// labels and owner reference someone stripped (and, for the verifiers' public keys, whose
// content was replaced: a planted key) is the operator's still, by its UID: the next pass
// restores labels, owner and content, keeps the signing keys it holds, and says so in an
// event; an object of the same name that someone else created is still refused.
func TestTamperedObjects_AreRepairedNotCalledForeign(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	r := newDirectReconciler(t, clocktesting.NewFakePassiveClock(t0), nil)
	createAuthService(t, ns, "auth", externalRedis)
	reconcileOnce(t, r, ns, "auth")
	reconcileOnce(t, r, ns, "auth")
	keysBefore := get(t, ns, "auth-signing-keys", &corev1.Secret{}).Data
	for _, tc := range []struct {
		name string
		obj  client.Object
		// plant changes the content as well, as a forger would.
		plant func(client.Object)
		check func(client.Object) string
	}{
		{"public keys with a planted key", &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "auth-public-keys"}},
			func(o client.Object) {
				s := o.(*corev1.Secret)
				s.Data["keyset.json"] = []byte(`{"keys":[{"kid":"forged","state":"active"}]}`)
			},
			func(o client.Object) string {
				if strings.Contains(string(o.(*corev1.Secret).Data["keyset.json"]), "forged") {
					return "the planted key is still listed"
				}
				return ""
			}},
		{"signing keys", &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "auth-signing-keys"}}, nil,
			func(o client.Object) string {
				if !maps.EqualFunc(o.(*corev1.Secret).Data, keysBefore, bytes.Equal) {
					return "the signing keys changed: the operator took the stripped Secret for lost keys"
				}
				return ""
			}},
		{"JWKS", &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "auth-jwks"}}, nil, nil},
		{"verifier Service", &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "auth-authserver"}}, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			obj := get(t, ns, tc.obj.GetName(), tc.obj)
			uid := obj.GetUID()
			update(t, obj, func(o client.Object) {
				o.SetLabels(nil)
				o.SetOwnerReferences(nil)
				if tc.plant != nil {
					tc.plant(o)
				}
			})
			res, err := r.Reconcile(ctx, request(ns, "auth"))
			if err != nil || res.RequeueAfter == foreignRetry {
				t.Fatalf("Reconcile: %v, %v: the tampered object was refused as foreign", res, err)
			}
			for _, c := range get(t, ns, "auth", &authv1alpha1.AuthService{}).Status.Conditions {
				if c.Reason == authv1alpha1.ReasonForeignObject {
					t.Fatalf("%s: %s", c.Type, c.Message)
				}
			}
			after := get(t, ns, tc.obj.GetName(), tc.obj)
			if after.GetUID() != uid || after.GetLabels()[objects.ManagedByLabel] != objects.ManagedByValue || after.GetLabels()[authv1alpha1.AuthServiceLabel] != "auth" ||
				len(after.GetOwnerReferences()) != 1 || after.GetOwnerReferences()[0].Name != "auth" {
				t.Fatalf("not repaired: uid %s (was %s), labels %v, owners %v", after.GetUID(), uid, after.GetLabels(), after.GetOwnerReferences())
			}
			if tc.check != nil {
				if msg := tc.check(after); msg != "" {
					t.Fatal(msg)
				}
			}
			waitEvent(t, ns, "auth", corev1.EventTypeWarning, authv1alpha1.EventObjectTampered, tc.obj.GetName())
		})
	}

	// Another object under the operator's name is still a stranger's.
	jwks := get(t, ns, "auth-jwks", &corev1.ConfigMap{})
	if err := k8sClient.Delete(ctx, jwks); err != nil {
		t.Fatal(err)
	}
	if err := k8sClient.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "auth-jwks"}, Data: map[string]string{"jwks.json": "{}"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Reconcile(ctx, request(ns, "auth")); err != nil {
		t.Fatal(err)
	}
	if c := condition(get(t, ns, "auth", &authv1alpha1.AuthService{}), authv1alpha1.KeysReadyCondition); c.Reason != authv1alpha1.ReasonForeignObject {
		t.Errorf("a ConfigMap someone else created under the JWKS's name: KeysReady %s %q, want ForeignObject", c.Reason, c.Message)
	}
}

// TestWriteSecret_CreatesUpdatesAtTheReadVersionAndRefusesForeign drives the one Secret
// writer against the API server as the operator's user: create, a no-op, an update, a
// conflict on a stale read, and refusals of a foreign Secret whether it was read or appeared
// since.
func TestWriteSecret_CreatesUpdatesAtTheReadVersionAndRefusesForeign(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	r := newDirectReconciler(t, clocktesting.NewFakePassiveClock(t0), nil)
	as := createAuthService(t, ns, "auth", externalRedis)
	desired := func(name, value string) *corev1.Secret {
		return &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: objects.Labels(as, objects.AppVerifier, componentSigningKeys)},
			Type:       corev1.SecretTypeOpaque,
			Data:       map[string][]byte{"key": []byte(value)},
		}
	}

	created, err := r.writeSecret(ctx, as, nil, desired("mine", "v1"), secretMerge{replaceData: true})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	stored := get(t, ns, "mine", &corev1.Secret{})
	if c := metav1.GetControllerOf(stored); c == nil || c.UID != as.UID || string(stored.Data["key"]) != "v1" {
		t.Fatalf("created Secret: controller %v, data %q", c, stored.Data["key"])
	}
	if created.ResourceVersion != stored.ResourceVersion {
		t.Errorf("create returned resourceVersion %q, stored %q", created.ResourceVersion, stored.ResourceVersion)
	}

	same, err := r.writeSecret(ctx, as, stored, desired("mine", "v1"), secretMerge{replaceData: true})
	if err != nil || same.ResourceVersion != stored.ResourceVersion {
		t.Fatalf("unchanged write: err %v, resourceVersion %q -> %q (want no update)", err, stored.ResourceVersion, same.ResourceVersion)
	}

	updated, err := r.writeSecret(ctx, as, stored, desired("mine", "v2"), secretMerge{replaceData: true})
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	if got := get(t, ns, "mine", &corev1.Secret{}); string(got.Data["key"]) != "v2" || got.ResourceVersion != updated.ResourceVersion {
		t.Fatalf("after update: data %q resourceVersion %q, returned %q", got.Data["key"], got.ResourceVersion, updated.ResourceVersion)
	}

	// stored is the read from before the update: writing from it must conflict, not win.
	if _, err := r.writeSecret(ctx, as, stored, desired("mine", "v3"), secretMerge{replaceData: true}); !apierrors.IsConflict(err) {
		t.Fatalf("write from a stale read: err %v, want a conflict", err)
	}
	if got := get(t, ns, "mine", &corev1.Secret{}); string(got.Data["key"]) != "v2" {
		t.Fatalf("a stale write replaced the data: %q", got.Data["key"])
	}

	foreign := createSecret(t, ns, "theirs", map[string][]byte{"key": []byte("theirs")})
	// Read before: refused without a write. Appeared since the read (current nil): the
	// create fails and the refusal names why.
	for name, current := range map[string]*corev1.Secret{"read": foreign, "appeared": nil} {
		if _, err := r.writeSecret(ctx, as, current, desired("theirs", "mine"), secretMerge{}); !isForeign(err) {
			t.Errorf("%s foreign Secret: err %v, want a foreignObjectError", name, err)
		}
	}
	if got := get(t, ns, "theirs", &corev1.Secret{}); string(got.Data["key"]) != "theirs" || len(got.OwnerReferences) != 0 {
		t.Errorf("the foreign Secret was taken over: data %q, owners %v", got.Data["key"], got.OwnerReferences)
	}
}
