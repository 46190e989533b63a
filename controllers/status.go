package controllers

import (
	"fmt"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
)

// conditionOrder is the order conditions are listed in: Ready first.
var conditionOrder = []string{
	authv1alpha1.ReadyCondition,
	authv1alpha1.KeysReadyCondition,
	authv1alpha1.RedisReadyCondition,
	authv1alpha1.ServerReadyCondition,
	authv1alpha1.IssuerReadyCondition,
	authv1alpha1.TLSReadyCondition,
	authv1alpha1.BlacklistIntactCondition,
}

// readinessConditions are the conditions Ready sums up. BlacklistIntact is not one: after
// a loss of the store, new logins work, so the AuthService is still ready. TLSReady is:
// a serving certificate that does not load keeps new pods from starting.
var readinessConditions = conditionOrder[1:6]

// conditionSetters choose each condition but Ready from what the phases found: its status,
// reason and message, or nil when the pass found nothing about it, which keeps what an
// earlier pass set. Each is pure and reads nothing but the scope.
var conditionSetters = map[string]func(*scope) *metav1.Condition{
	authv1alpha1.KeysReadyCondition:       keysReadyCondition,
	authv1alpha1.RedisReadyCondition:      redisReadyCondition,
	authv1alpha1.ServerReadyCondition:     serverReadyCondition,
	authv1alpha1.IssuerReadyCondition:     issuerReadyCondition,
	authv1alpha1.TLSReadyCondition:        tlsReadyCondition,
	authv1alpha1.BlacklistIntactCondition: blacklistIntactCondition,
}

// warningActions are the reasons a condition is also told in a Warning event with, on each
// pass that finds it, and the action each event names.
var warningActions = map[string]string{
	authv1alpha1.ReasonForeignObject:        "Reconcile",
	authv1alpha1.ReasonReconcileFailed:      "Reconcile",
	authv1alpha1.ReasonSecretInvalid:        "ReadKeys",
	authv1alpha1.ReasonKeyPrefixInvalid:     "ConfigureRedis",
	authv1alpha1.ReasonRedisPasswordInvalid: "ConfigureRedis",
}

// updateStatus is the one place the conditions are set: each from what the phases found,
// or, for the part of a phase that failed, from its error; Ready sums them up. It returns
// the conditions this pass found. It reads and writes nothing but the scope and as.Status,
// so it is tested as a table.
func updateStatus(s *scope) []metav1.Condition {
	var found []metav1.Condition
	for _, t := range conditionOrder[1:] {
		c := conditionSetters[t](s)
		if err, failed := s.failed[t]; failed {
			c = failedCondition(err)
		}
		if c != nil {
			c.Type = t
			setCondition(s.as, *c)
			found = append(found, *c)
		}
	}
	setReadyCondition(s.as)
	return found
}

// failedCondition is the condition of a part whose phase failed with err; nil when the
// phase only lost a write race to a newer version and is retried at once.
func failedCondition(err error) *metav1.Condition {
	switch {
	case isForeign(err):
		return cond(metav1.ConditionFalse, authv1alpha1.ReasonForeignObject, capitalize(err.Error()))
	case apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err):
		return nil
	default:
		return cond(metav1.ConditionFalse, authv1alpha1.ReasonReconcileFailed, capitalize(err.Error()))
	}
}

func cond(status metav1.ConditionStatus, reason, message string) *metav1.Condition {
	return &metav1.Condition{Status: status, Reason: reason, Message: message}
}

// setCondition sets a condition for the object's current generation. Its transition time
// moves only when its status changes.
func setCondition(as *authv1alpha1.AuthService, c metav1.Condition) {
	c.ObservedGeneration = as.Generation
	meta.SetStatusCondition(&as.Status.Conditions, c)
}

// setReadyCondition summarizes the other conditions: Ready is True only when all are, and
// otherwise names each one that is not, with its message. A missing condition is set to
// Unknown.
func setReadyCondition(as *authv1alpha1.AuthService) {
	var notReady []string
	for _, t := range readinessConditions {
		c := meta.FindStatusCondition(as.Status.Conditions, t)
		if c == nil {
			setCondition(as, metav1.Condition{Type: t, Status: metav1.ConditionUnknown, Reason: authv1alpha1.ReasonPending, Message: "Not reconciled yet"})
			c = meta.FindStatusCondition(as.Status.Conditions, t)
		}
		if c.Status != metav1.ConditionTrue {
			notReady = append(notReady, fmt.Sprintf("%s: %s", t, c.Message))
		}
	}
	ready := metav1.Condition{Type: authv1alpha1.ReadyCondition, Status: metav1.ConditionTrue, Reason: authv1alpha1.ReasonReady,
		Message: "Signing keys are published, Redis is available and the verifier and the issuer are serving"}
	if len(notReady) > 0 {
		ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, authv1alpha1.ReasonNotReady, strings.Join(notReady, "; ")
	}
	setCondition(as, ready)
	slices.SortStableFunc(as.Status.Conditions, func(a, b metav1.Condition) int {
		return slices.Index(conditionOrder, a.Type) - slices.Index(conditionOrder, b.Type)
	})
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// keysReadyCondition chooses KeysReady: the keys the Secret holds, or why it was left alone.
func keysReadyCondition(s *scope) *metav1.Condition {
	as, plan := s.as, s.keys.plan
	switch {
	case s.keys.invalid != nil:
		return cond(metav1.ConditionFalse, authv1alpha1.ReasonSecretInvalid, fmt.Sprintf(
			"Secret %s does not hold a valid key set (%v); it was left untouched so no key is lost: restore it, or delete it to start over with new keys",
			as.SigningKeysSecretName(), s.keys.invalid))
	case plan == nil:
		return nil
	}
	active, _ := plan.Set.Active()
	next, _ := plan.Set.Next()
	published := len(plan.Set.Published(s.now).Keys)
	msg := fmt.Sprintf("Key %s signs; key %s is published and takes over at %s; %d retired key(s) still verify access tokens and %d more refresh tokens only",
		active.ID, next.ID, plan.NextRotation.UTC().Format(time.RFC3339), published-2, len(plan.Set.Keys)-published)
	if lost := plan.Record.LostKeyID; lost != "" {
		return cond(metav1.ConditionTrue, authv1alpha1.ReasonSecretRecreated, fmt.Sprintf(
			"Secret %s was deleted and recreated with new keys: tokens signed by key %s no longer verify. %s", as.SigningKeysSecretName(), lost, msg))
	}
	return cond(metav1.ConditionTrue, authv1alpha1.ReasonKeysPublished, msg)
}

// useLabelRequirement is what a Secret named in the spec must carry besides its keys.
func useLabelRequirement(s *scope) string {
	if !s.requireSecretUseLabel {
		return ""
	}
	return fmt.Sprintf(" and the label %s=true", secretUseLabel(s.as))
}

// tlsReadyCondition chooses TLSReady: plain HTTP, or spec.server.tls's certificate and what
// is wrong with it. An unusable Secret reads the same whatever the cause, so that it does
// not tell whoever may create AuthServices which Secrets exist.
func tlsReadyCondition(s *scope) *metav1.Condition {
	spec, f := s.as.Spec.Server.TLS, s.tls
	if spec == nil {
		return cond(metav1.ConditionTrue, authv1alpha1.ReasonPlainHTTP, "spec.server.tls is not set: the verifier and the issuer serve plain HTTP")
	}
	const keepServing = "Running pods keep serving their last good certificate; new ones are not rolled out until then"
	if f.unusable {
		return cond(metav1.ConditionFalse, authv1alpha1.ReasonTLSSecretUnusable, fmt.Sprintf(
			"spec.server.tls.secretName names Secret %s, which this AuthService cannot use: it must exist in namespace %s with non-empty keys %s and %s%s; create or fix it (a cert-manager Certificate writes one). %s",
			spec.SecretName, s.as.Namespace, corev1.TLSCertKey, corev1.TLSPrivateKeyKey, useLabelRequirement(s), keepServing))
	}
	if f.loadErr != nil {
		return cond(metav1.ConditionFalse, authv1alpha1.ReasonCertificateInvalid, fmt.Sprintf(
			"Secret %s (spec.server.tls.secretName) does not hold a usable certificate: %v; fix tls.crt and tls.key. %s", spec.SecretName, f.loadErr, keepServing))
	}
	leaf := f.leaf
	if leaf == nil {
		return nil
	}
	var missing []string
	for _, host := range []string{s.as.ServerName() + "." + s.as.Namespace + ".svc", s.as.IssuerName() + "." + s.as.Namespace + ".svc"} {
		if leaf.VerifyHostname(host) != nil {
			missing = append(missing, host)
		}
	}
	the := fmt.Sprintf("The certificate in Secret %s (spec.server.tls.secretName)", spec.SecretName)
	switch {
	case s.now.After(leaf.NotAfter):
		return cond(metav1.ConditionFalse, authv1alpha1.ReasonCertificateInvalid, fmt.Sprintf(
			"%s expired at %s: renew it (cert-manager renews before expiry; check its Certificate)", the, leaf.NotAfter.UTC().Format(time.RFC3339)))
	case s.now.Before(leaf.NotBefore):
		return cond(metav1.ConditionFalse, authv1alpha1.ReasonCertificateInvalid, fmt.Sprintf(
			"%s is not valid before %s: check the clock of its issuer", the, leaf.NotBefore.UTC().Format(time.RFC3339)))
	case len(missing) > 0:
		return cond(metav1.ConditionFalse, authv1alpha1.ReasonCertificateInvalid, fmt.Sprintf(
			"%s does not name %s: add them to its DNS names (dnsNames of the cert-manager Certificate), or callers of the Services cannot verify it", the, strings.Join(missing, " and ")))
	}
	ca := "the CA in status.tls.caBundle"
	if s.as.Status.TLS == nil || s.as.Status.TLS.CABundle == "" {
		ca = "the CA that signed it (the Secret has no ca.crt)"
	}
	return cond(metav1.ConditionTrue, authv1alpha1.ReasonCertificateValid, fmt.Sprintf(
		"The verifier and the issuer serve HTTPS with the certificate of Secret %s, valid until %s; consumers trust %s", spec.SecretName, leaf.NotAfter.UTC().Format(time.RFC3339), ca))
}

// serverReadyCondition chooses ServerReady: why the verifier is not rolled out, or its rollout.
func serverReadyCondition(s *scope) *metav1.Condition {
	return workloadCondition(s, "auth server", s.server, "auth-server", serverURL(s.as))
}

// issuerReadyCondition chooses IssuerReady: why the issuer is not rolled out, or its rollout.
func issuerReadyCondition(s *scope) *metav1.Condition {
	return workloadCondition(s, "issuer", s.issuer, "issuer", issuerURL(s.as))
}

// workloadCondition says what held back the phase of one role (what), or judges its
// Deployment d, read back after the phase applied it; replicas names its pods and url says
// where it serves.
func workloadCondition(s *scope, what string, d *appsv1.Deployment, replicas, url string) *metav1.Condition {
	switch {
	case s.redis == nil:
		return cond(metav1.ConditionFalse, authv1alpha1.ReasonWaitingForRedis,
			fmt.Sprintf("The %s is not rolled out until its Redis settings are complete: see the RedisReady condition", what))
	case !s.tlsUsable():
		return cond(metav1.ConditionFalse, authv1alpha1.ReasonWaitingForTLS,
			fmt.Sprintf("The %s is not rolled out while its TLS Secret is unusable (its running pods keep serving): see the TLSReady condition", what))
	case s.image == "":
		return cond(metav1.ConditionFalse, authv1alpha1.ReasonNoImage, "No auth-server image: set spec.server.image, or start the operator with --authserver-image")
	case d == nil:
		return nil
	}
	want := ptr.Deref(d.Spec.Replicas, 1)
	st := d.Status
	switch {
	case st.ObservedGeneration < d.Generation:
		return cond(metav1.ConditionFalse, authv1alpha1.ReasonProgressing, fmt.Sprintf("Deployment %s has not yet observed its latest spec", d.Name))
	case st.UpdatedReplicas < want:
		return cond(metav1.ConditionFalse, authv1alpha1.ReasonProgressing, fmt.Sprintf("Rolling out: %d of %d %s replicas updated", st.UpdatedReplicas, want, replicas))
	case st.Replicas > st.UpdatedReplicas:
		return cond(metav1.ConditionFalse, authv1alpha1.ReasonProgressing, fmt.Sprintf("Rolling out: %d old %s replicas pending termination", st.Replicas-st.UpdatedReplicas, replicas))
	case st.AvailableReplicas < want:
		return cond(metav1.ConditionFalse, authv1alpha1.ReasonUnavailable, fmt.Sprintf("%d of %d %s replicas available", st.AvailableReplicas, want, replicas))
	default:
		return cond(metav1.ConditionTrue, authv1alpha1.ReasonReady, fmt.Sprintf("%d of %d %s replicas available at %s", st.AvailableReplicas, want, replicas, url))
	}
}

// blacklistIntactCondition chooses BlacklistIntact from what the issuer recorded of the store.
func blacklistIntactCondition(s *scope) *metav1.Condition {
	if !s.storeStateRead {
		return nil
	}
	c, _ := blacklistIntact(s.storeState, s.now, tokenOutlives(s.as))
	return &c
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
