package controllers

import (
	"time"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
)

// minPublishTime is how long a next key of the AuthService is published before it may sign:
// its spec.signingKeys.minPublishTime, else the operator's --min-key-publish-time. The key
// lifecycle and the auth server's JWKS max-age both take it from here, so they agree.
func (r *AuthServiceReconciler) minPublishTime(as *authv1alpha1.AuthService) time.Duration {
	if d := as.Spec.SigningKeys.MinPublishTime; d != nil && d.Duration > 0 {
		return d.Duration
	}
	return r.MinKeyPublishTime
}
