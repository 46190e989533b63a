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

// reconcileStoreState applies the empty store-state ConfigMap and sets BlacklistIntact
// from what the issuer wrote into it. It returns when the condition next changes on its
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

// blacklistIntact is the BlacklistIntact condition for the store-state ConfigMap's data:
//   - nothing recorded yet (no generation): Unknown, NotReported;
//   - a loss recorded whose cutoff still refuses tokens (a token issued before notBefore
//     may be unexpired until notBefore + outlives): False, StoreDataLost, and recheck is
//     how long until that ends;
//   - otherwise: True, Intact (naming a past loss whose cutoff has run out).
//
// A malformed time is reported as a loss at an unknown time rather than hidden: the
// issuer refuses tokens by its own copy of the cutoff regardless.
func blacklistIntact(data map[string]string, now time.Time, outlives time.Duration) (metav1.Condition, time.Duration) {
	generation := data[authv1alpha1.StoreStateGenerationKey]
	if generation == "" {
		return metav1.Condition{Status: metav1.ConditionUnknown, Reason: authv1alpha1.ReasonNotReported,
			Message: "The issuer has not yet recorded the blacklist store's generation"}, 0
	}
	lostAtText := data[authv1alpha1.StoreStateLostAtKey]
	if lostAtText == "" {
		return metav1.Condition{Status: metav1.ConditionTrue, Reason: authv1alpha1.ReasonIntact,
			Message: fmt.Sprintf("The blacklist store holds every entry of its generation %s", generation)}, 0
	}
	lostAt, err := time.Parse(time.RFC3339, lostAtText)
	if err != nil {
		return metav1.Condition{Status: metav1.ConditionFalse, Reason: authv1alpha1.ReasonStoreDataLost,
			Message: fmt.Sprintf("The blacklist store lost its data (the recorded time %q does not parse): tokens issued before the loss are refused until they expire; new logins work", lostAtText)}, 0
	}
	cutoff := lostAt
	if nb, err := time.Parse(time.RFC3339, data[authv1alpha1.StoreStateNotBeforeKey]); err == nil {
		cutoff = nb
	}
	previous := data[authv1alpha1.StoreStatePreviousGenerationKey]
	if previous == "" {
		previous = "unknown"
	}
	until := cutoff.Add(outlives)
	if !now.Before(until) {
		return metav1.Condition{Status: metav1.ConditionTrue, Reason: authv1alpha1.ReasonIntact,
			Message: fmt.Sprintf("The blacklist store holds every entry of its generation %s; it lost generation %s at %s, and every token issued before %s has expired since",
				generation, previous, lostAt.UTC().Format(time.RFC3339), cutoff.UTC().Format(time.RFC3339))}, 0
	}
	return metav1.Condition{Status: metav1.ConditionFalse, Reason: authv1alpha1.ReasonStoreDataLost,
		Message: fmt.Sprintf("The blacklist store lost its data at %s (generation %s, now %s): tokens issued before %s are refused until they expire (by %s); new logins work",
			lostAt.UTC().Format(time.RFC3339), previous, generation, cutoff.UTC().Format(time.RFC3339), until.UTC().Format(time.RFC3339))}, until.Sub(now)
}
