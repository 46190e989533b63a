package controllers

import (
	"fmt"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestRevokedBy_NamesTheOwnerOfTheEntry reads the owners of one entry of the set list.
func TestRevokedBy_NamesTheOwnerOfTheEntry(t *testing.T) {
	entry := func(manager, kids string) metav1.ManagedFieldsEntry {
		return metav1.ManagedFieldsEntry{Manager: manager, FieldsV1: metav1.NewFieldsV1(`{"f:spec":{"f:signingKeys":{"f:revokedKeyIDs":{` + kids + `}}}}`)}
	}
	fields := []metav1.ManagedFieldsEntry{
		{Manager: "kubectl-create", FieldsV1: metav1.NewFieldsV1(`{"f:spec":{"f:server":{}}}`)},
		entry("alice", `"v:\"kid-a\"":{}`),
		entry("bob", `"v:\"kid-b\"":{},".":{}`),
		entry("carol", `"v:\"kid-b\"":{}`),
		{Manager: "broken", FieldsV1: metav1.NewFieldsV1(`not json`)},
	}
	for _, tc := range []struct {
		kid  string
		want string
	}{
		{"kid-a", "[alice]"},
		{"kid-b", "[bob carol]"},
		{"kid-c", "[]"},
	} {
		if got := fmt.Sprint(revokedBy(fields, tc.kid)); got != tc.want {
			t.Errorf("revokedBy(%s) = %s, want %s", tc.kid, got, tc.want)
		}
	}
}
