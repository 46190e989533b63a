package controllers

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
)

// SecretUseLabelPrefix starts the label that, with --require-secret-use-label, a Secret
// named by spec.redis.external must carry before an AuthService may use it:
// use.auth.hiringo.tech/<AuthService name>: "true". Only whoever may label Secrets can grant
// it, so being allowed to create AuthServices no longer means being allowed to send any
// Secret of the namespace to a Redis address of one's choice.
const SecretUseLabelPrefix = "use.auth.hiringo.tech/"

// secretUseLabel is the label that grants as the use of a Secret.
func secretUseLabel(as *authv1alpha1.AuthService) string { return SecretUseLabelPrefix + as.Name }

// unusableSecretError says a Secret named in the spec cannot be used. Its message is the same
// whether the Secret is missing, lacks the key or lacks the use label, so that a condition
// does not tell whoever may create AuthServices, but not read Secrets, which Secrets exist.
type unusableSecretError struct{ msg string }

func (e *unusableSecretError) Error() string { return e.msg }

// readReferencedSecret returns the value of the key that ref names, from a Secret of the
// AuthService's namespace that the user owns. field is the spec path of ref, for the message.
// The Secret carries no operator label, so it is not in the cache: it is read from the API.
func (r *AuthServiceReconciler) readReferencedSecret(ctx context.Context, as *authv1alpha1.AuthService, field string, ref *authv1alpha1.SecretKeyReference) (*corev1.Secret, []byte, error) {
	want := fmt.Sprintf("it must exist in namespace %s with a non-empty key %q", as.Namespace, ref.Key)
	if r.RequireSecretUseLabel {
		want += fmt.Sprintf(" and the label %s=true", secretUseLabel(as))
	}
	unusable := &unusableSecretError{msg: fmt.Sprintf("%s names Secret %s, which this AuthService cannot use: %s; create or fix it", field, ref.Name, want)}
	secret := &corev1.Secret{}
	err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: as.Namespace, Name: ref.Name}, secret)
	switch {
	case apierrors.IsNotFound(err):
		return nil, nil, unusable
	case err != nil:
		return nil, nil, fmt.Errorf("reading Secret %s named by %s: %w", ref.Name, field, err)
	}
	value := secret.Data[ref.Key]
	if len(value) == 0 || (r.RequireSecretUseLabel && secret.Labels[secretUseLabel(as)] != "true") {
		return nil, nil, unusable
	}
	return secret, value, nil
}
