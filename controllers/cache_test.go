package controllers

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
	"github.com/hiringo/auth-operator/controllers/internal/objects"
	"github.com/hiringo/auth-operator/internal/testutil/poll"
)

func TestCache_HoldsOnlyTheOperatorsObjects(t *testing.T) {
	ns := newNamespace(t)
	for _, name := range []string{"unrelated-1", "unrelated-2", "unrelated-3"} {
		createSecret(t, ns, name, map[string][]byte{"token": []byte("not the operator's")})
	}
	foreign := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app-config"}, Data: map[string]string{"a": "b"}}
	if err := k8sClient.Create(context.Background(), foreign); err != nil {
		t.Fatal(err)
	}
	mgr, _ := startManager(t, ns, clocktesting.NewFakePassiveClock(t0))
	createAuthService(t, ns, "auth", nil)
	waitCondition(t, ns, "auth", authv1alpha1.KeysReadyCondition, metav1.ConditionTrue, "")

	cached := mgr.GetCache()
	poll.Until(t, waitTimeout, "the cache to list the operator's Secrets", func() error {
		secrets := &corev1.SecretList{}
		if err := cached.List(context.Background(), secrets, client.InNamespace(ns)); err != nil {
			return err
		}
		var names []string
		for _, s := range secrets.Items {
			names = append(names, s.Name)
		}
		if len(names) != 3 {
			return errorf("cached Secrets = %v, want only auth-signing-keys, auth-public-keys and auth-redis", names)
		}
		for _, s := range secrets.Items {
			if s.Labels[objects.ManagedByLabel] != objects.ManagedByValue {
				return errorf("cached Secret %s is not the operator's", s.Name)
			}
		}
		return nil
	})
	if err := cached.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "unrelated-1"}, &corev1.Secret{}); err == nil {
		t.Error("a foreign Secret is in the cache")
	}
	cms := &corev1.ConfigMapList{}
	if err := cached.List(context.Background(), cms, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, cm := range cms.Items {
		if cm.Name == "app-config" {
			t.Error("a foreign ConfigMap is in the cache")
		}
	}
}
