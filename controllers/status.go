package controllers

import (
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

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

// finding is what one pass found about the part a condition covers.
type finding struct {
	status  metav1.ConditionStatus
	reason  string
	message string
}

// findings are the facts the phases of one pass record, by condition type. A later finding
// replaces an earlier one: the phase loop's verdict on a failed phase replaces what the
// phase found before it failed. A condition without a finding keeps what an earlier pass
// set (a phase that lost a write race found nothing new).
type findings map[string]finding

func (f findings) set(conditionType string, status metav1.ConditionStatus, reason, message string) {
	f[conditionType] = finding{status: status, reason: reason, message: message}
}

// updateStatus is the one place the conditions are derived: it turns what the phases found
// into their conditions and sums them up in Ready. It reads and writes nothing but
// as.Status, so it is tested as a table.
func updateStatus(as *authv1alpha1.AuthService, found findings) {
	for _, t := range conditionOrder[1:] {
		if f, ok := found[t]; ok {
			setCondition(as, t, f.status, f.reason, f.message)
		}
	}
	setReadyCondition(as)
}

// setCondition sets a condition for the object's current generation. Its transition time
// moves only when its status changes.
func setCondition(as *authv1alpha1.AuthService, conditionType string, status metav1.ConditionStatus, reason, message string) {
	meta.SetStatusCondition(&as.Status.Conditions, metav1.Condition{
		Type:               conditionType,
		Status:             status,
		Reason:             reason,
		Message:            message,
		ObservedGeneration: as.Generation,
	})
}

func findCondition(as *authv1alpha1.AuthService, conditionType string) *metav1.Condition {
	return meta.FindStatusCondition(as.Status.Conditions, conditionType)
}

// setReadyCondition summarizes the other conditions: Ready is True only when all are, and
// otherwise names each one that is not, with its message. A missing condition is set to
// Unknown.
func setReadyCondition(as *authv1alpha1.AuthService) {
	var notReady []string
	for _, t := range readinessConditions {
		c := findCondition(as, t)
		if c == nil {
			setCondition(as, t, metav1.ConditionUnknown, authv1alpha1.ReasonPending, "Not reconciled yet")
			c = findCondition(as, t)
		}
		if c.Status != metav1.ConditionTrue {
			notReady = append(notReady, fmt.Sprintf("%s: %s", t, c.Message))
		}
	}
	if len(notReady) == 0 {
		setCondition(as, authv1alpha1.ReadyCondition, metav1.ConditionTrue, authv1alpha1.ReasonReady,
			"Signing keys are published, Redis is available and the verifier and the issuer are serving")
	} else {
		setCondition(as, authv1alpha1.ReadyCondition, metav1.ConditionFalse, authv1alpha1.ReasonNotReady, strings.Join(notReady, "; "))
	}
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
