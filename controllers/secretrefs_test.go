//go:build !unit

package controllers

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
)

// TestExternalRedis_SecretConditionsRevealNothing: the condition for a Secret that is
// missing reads the same as for one without the key, and with --require-secret-use-label
// the same as for one without the label; with the label the Secret is used.
func TestExternalRedis_SecretConditionsRevealNothing(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	message := func(r *AuthServiceReconciler, secretName string) string {
		t.Helper()
		update(t, get(t, ns, "auth", &authv1alpha1.AuthService{}), func(as *authv1alpha1.AuthService) {
			as.Spec.Redis.External.PasswordSecretRef = &authv1alpha1.SecretKeyReference{Name: secretName, Key: "pw"}
		})
		if _, err := r.Reconcile(ctx, request(ns, "auth")); err != nil {
			t.Fatalf("Reconcile: %v", err)
		}
		c := condition(get(t, ns, "auth", &authv1alpha1.AuthService{}), authv1alpha1.RedisReadyCondition)
		if c.Status == metav1.ConditionTrue {
			return ""
		}
		if c.Reason != authv1alpha1.ReasonRedisSecretUnusable {
			t.Errorf("RedisReady reason = %s %q", c.Reason, c.Message)
		}
		// The same text but for the name the spec gave.
		return strings.ReplaceAll(c.Message, secretName, "NAME")
	}
	createAuthService(t, ns, "auth", externalRedis)
	createSecret(t, ns, "no-key", map[string][]byte{"other": []byte("x")})
	createSecret(t, ns, "unlabelled", map[string][]byte{"pw": []byte("s3cret")})
	labelled := createSecret(t, ns, "labelled", map[string][]byte{"pw": []byte("s3cret")})
	update(t, labelled, func(s *corev1.Secret) { s.Labels = map[string]string{"use.auth.hiringo.tech/auth": "true"} })

	open := newDirectReconciler(t, clocktesting.NewFakePassiveClock(t0), nil)
	missing := message(open, "missing")
	if missing == "" || message(open, "no-key") != missing {
		t.Errorf("without the opt-in, a missing Secret and one without the key read differently: %q", missing)
	}
	if message(open, "unlabelled") != "" {
		t.Error("without the opt-in, an unlabelled Secret with the key is not used")
	}

	strict := newDirectReconciler(t, clocktesting.NewFakePassiveClock(t0), nil)
	strict.RequireSecretUseLabel = true
	missing = message(strict, "missing")
	if !strings.Contains(missing, "use.auth.hiringo.tech/auth=true") {
		t.Errorf("with the opt-in, the condition does not name the label: %q", missing)
	}
	for _, name := range []string{"no-key", "unlabelled"} {
		if got := message(strict, name); got != missing {
			t.Errorf("with the opt-in, Secret %s reads %q, a missing one %q", name, got, missing)
		}
	}
	if message(strict, "labelled") != "" {
		t.Error("with the opt-in, a labelled Secret is not used")
	}
}
