package controllers

import (
	"context"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
	"github.com/hiringo/auth-operator/internal/testutil/poll"
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

// TestRevocationEvent_NamesTheFieldManager revokes two keys on the API server, each
// written by another field manager: each KeyRevoked event names the manager that
// wrote that key's entry, not the other one.
func TestRevocationEvent_NamesTheFieldManager(t *testing.T) {
	clk := clocktesting.NewFakePassiveClock(t0)
	ns, as, created := startWithKeys(t, clk)
	first := mustActive(t, created).ID
	revokeAs(t, as, "alice-tool", first)
	waitEvent(t, ns, "auth", corev1.EventTypeWarning, "KeyRevoked", first, "by field manager alice-tool (spec.signingKeys.revokedKeyIDs)")

	var second string
	poll.Until(t, waitTimeout, "a new next key", func() error {
		set, _ := keySet(t, ns, "auth")
		next, ok := set.Next()
		if !ok || next.ID == mustNext(t, created).ID {
			return fmt.Errorf("next key still %s", next.ID)
		}
		second = next.ID
		return nil
	})
	revokeAs(t, as, "bob-tool", second)
	note := waitEvent(t, ns, "auth", corev1.EventTypeWarning, "KeyRevoked", second, "by field manager bob-tool (spec.signingKeys.revokedKeyIDs)")
	t.Logf("event: %s", note)
}

// revokeAs adds kid to spec.signingKeys.revokedKeyIDs as field manager manager.
func revokeAs(t *testing.T, as *authv1alpha1.AuthService, manager, kid string) {
	t.Helper()
	poll.Until(t, waitTimeout, "revoking "+kid, func() error {
		if err := k8sClient.Get(context.Background(), client.ObjectKeyFromObject(as), as); err != nil {
			return err
		}
		as.Spec.SigningKeys.RevokedKeyIDs = append(as.Spec.SigningKeys.RevokedKeyIDs, authv1alpha1.KeyID(kid))
		return k8sClient.Update(context.Background(), as, client.FieldOwner(manager))
	})
}
