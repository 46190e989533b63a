package controllers

import (
	"context"

	corev1 "k8s.io/api/core/v1"
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

// readUserSecret reads the Secret name of the AuthService's namespace, which the user owns
// and the spec names: it carries no operator label, so it is not in the cache and is read
// from the API. It is nil when it cannot be used: missing, with one of keys empty, or
// without the use label that --require-secret-use-label asks for. Its conditions say the
// same in every case, so that they do not tell whoever may create AuthServices, but not
// read Secrets, which Secrets exist.
func (r *AuthServiceReconciler) readUserSecret(ctx context.Context, as *authv1alpha1.AuthService, name string, keys ...string) (*corev1.Secret, error) {
	secret := &corev1.Secret{}
	if err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: as.Namespace, Name: name}, secret); err != nil {
		return nil, client.IgnoreNotFound(err)
	}
	for _, k := range keys {
		if len(secret.Data[k]) == 0 {
			return nil, nil
		}
	}
	if r.RequireSecretUseLabel && secret.Labels[secretUseLabel(as)] != "true" {
		return nil, nil
	}
	return secret, nil
}
