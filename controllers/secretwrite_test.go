package controllers

import (
	"maps"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

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
