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
	authv1alpha1.BlacklistIntactCondition,
}

// readinessConditions are the conditions Ready sums up. BlacklistIntact is not one: after
// a loss of the store, new logins work, so the AuthService is still ready.
var readinessConditions = conditionOrder[1:5]

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

// setPhaseFailed marks the condition that a failing phase owns as False with the error.
func setPhaseFailed(as *authv1alpha1.AuthService, conditionType string, err error) {
	setCondition(as, conditionType, metav1.ConditionFalse, authv1alpha1.ReasonReconcileFailed, capitalize(err.Error()))
}

// setReadyCondition summarizes the other conditions: Ready is True only when all are, and
// otherwise names each one that is not, with its message. A missing condition is set to
// Unknown.
func setReadyCondition(as *authv1alpha1.AuthService) {
	var notReady []string
	for _, t := range readinessConditions {
		c := findCondition(as, t)
		if c == nil {
			setCondition(as, t, metav1.ConditionUnknown, "Pending", "Not reconciled yet")
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
