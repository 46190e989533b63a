package controllers

import (
	"context"
	"maps"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/hiringo/auth-operator/controllers/internal/objects"
)

// TestMergeSecret_ReplacesOnlyWhatTheOperatorOwns: desired's labels and data go in; an
// owned annotation desired lacks is removed, others are kept; data keys desired lacks
// are dropped only with replaceData. The stored Secret is not changed.
func TestMergeSecret_ReplacesOnlyWhatTheOperatorOwns(t *testing.T) {
	current := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name: "s", ResourceVersion: "7",
			Labels:      map[string]string{"team": "a", objects.ManagedByLabel: "someone"},
			Annotations: map[string]string{"owned": "old", "user": "kept"},
		},
		Data: map[string][]byte{"extra": []byte("x"), "key": []byte("old")},
	}
	desired := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{objects.ManagedByLabel: objects.ManagedByValue}},
		Data:       map[string][]byte{"key": []byte("new")},
	}
	for _, tc := range []struct {
		name      string
		merge     secretMerge
		wantAnn   map[string]string
		wantExtra bool
	}{
		{"kept data, no owned annotations", secretMerge{}, map[string]string{"owned": "old", "user": "kept"}, true},
		{"replaced data, owned annotation removed", secretMerge{ownedAnnotations: []string{"owned"}, replaceData: true}, map[string]string{"user": "kept"}, false},
	} {
		got := mergeSecret(current, desired, tc.merge)
		if got.ResourceVersion != "7" {
			t.Errorf("%s: resourceVersion = %q, want the read one (it guards the update)", tc.name, got.ResourceVersion)
		}
		if want := map[string]string{"team": "a", objects.ManagedByLabel: objects.ManagedByValue}; !maps.Equal(got.Labels, want) {
			t.Errorf("%s: labels = %v, want %v", tc.name, got.Labels, want)
		}
		if !maps.Equal(got.Annotations, tc.wantAnn) {
			t.Errorf("%s: annotations = %v, want %v", tc.name, got.Annotations, tc.wantAnn)
		}
		if string(got.Data["key"]) != "new" {
			t.Errorf("%s: data key = %q, want new", tc.name, got.Data["key"])
		}
		if _, ok := got.Data["extra"]; ok != tc.wantExtra {
			t.Errorf("%s: extra data key present = %v, want %v", tc.name, ok, tc.wantExtra)
		}
	}
	if string(current.Data["key"]) != "old" || current.Annotations["owned"] != "old" || current.Labels[objects.ManagedByLabel] != "someone" {
		t.Errorf("mergeSecret changed the stored Secret: %+v", current)
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
