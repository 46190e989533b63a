package controllers

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
	"github.com/hiringo/auth-operator/controllers/internal/objects"
)

// storeStateConfigMap is the ConfigMap as the operator creates it: empty. It writes no
// data field, so its applies never touch what the issuer recorded.
func storeStateConfigMap(as *authv1alpha1.AuthService) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: as.StoreStateConfigMapName(), Namespace: as.Namespace, Labels: objects.Labels(as, objects.AppIssuer, componentIssuer)},
	}
}

// reconcileStoreState applies the empty store-state ConfigMap and records what the issuer
// wrote into it, for BlacklistIntact. It returns when that condition next changes on its
// own: when the last token refused by a cutoff has expired.
func (r *AuthServiceReconciler) reconcileStoreState(ctx context.Context, s *scope) (time.Duration, error) {
	as := s.as
	if err := r.apply(ctx, as, storeStateConfigMap(as)); err != nil {
		return 0, err
	}
	cm := &corev1.ConfigMap{}
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: as.Namespace, Name: as.StoreStateConfigMapName()}, cm); client.IgnoreNotFound(err) != nil {
		return 0, fmt.Errorf("reading ConfigMap %s: %w", as.StoreStateConfigMapName(), err)
	}
	s.storeState, s.storeStateRead = cm.Data, true
	_, recheck := blacklistIntact(cm.Data, s.now, tokenOutlives(as))
	return recheck, nil
}

// tokenOutlives is how long after its issue a token of this AuthService may still be
// accepted: the refresh lifetime (which is at least the access lifetime) plus the leeway.
func tokenOutlives(as *authv1alpha1.AuthService) time.Duration {
	tokens := withDefaults(&as.Spec).Tokens
	return tokens.RefreshLifetime.Duration + tokens.Leeway.Duration
}
