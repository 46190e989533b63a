package controllers

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
)

// updateStatus is pure: these cases feed it what the phases found (and what an earlier pass
// left in the status) and compare every condition it derives, without a server.
func TestUpdateStatus_DerivesEveryConditionFromTheFindings(t *testing.T) {
	type cond struct {
		status  metav1.ConditionStatus
		reason  string
		message string
	}
	ok := func(reason string) finding { return finding{metav1.ConditionTrue, reason, "fine"} }
	cases := []struct {
		name  string
		prior []metav1.Condition
		found func(findings)
		want  map[string]cond
	}{{
		name:  "nothing found yet: every readiness condition is Pending and Ready names them all",
		found: func(findings) {},
		want: map[string]cond{
			authv1alpha1.KeysReadyCondition:   {metav1.ConditionUnknown, authv1alpha1.ReasonPending, "Not reconciled yet"},
			authv1alpha1.RedisReadyCondition:  {metav1.ConditionUnknown, authv1alpha1.ReasonPending, "Not reconciled yet"},
			authv1alpha1.ServerReadyCondition: {metav1.ConditionUnknown, authv1alpha1.ReasonPending, "Not reconciled yet"},
			authv1alpha1.IssuerReadyCondition: {metav1.ConditionUnknown, authv1alpha1.ReasonPending, "Not reconciled yet"},
			authv1alpha1.TLSReadyCondition:    {metav1.ConditionUnknown, authv1alpha1.ReasonPending, "Not reconciled yet"},
			authv1alpha1.ReadyCondition: {metav1.ConditionFalse, authv1alpha1.ReasonNotReady,
				"KeysReady: Not reconciled yet; RedisReady: Not reconciled yet; ServerReady: Not reconciled yet; IssuerReady: Not reconciled yet; TLSReady: Not reconciled yet"},
		},
	}, {
		name: "all parts ready, the blacklist lost its data: Ready stays True",
		found: func(f findings) {
			f[authv1alpha1.KeysReadyCondition] = ok(authv1alpha1.ReasonKeysPublished)
			f[authv1alpha1.RedisReadyCondition] = ok(authv1alpha1.ReasonReady)
			f[authv1alpha1.ServerReadyCondition] = ok(authv1alpha1.ReasonReady)
			f[authv1alpha1.IssuerReadyCondition] = ok(authv1alpha1.ReasonReady)
			f[authv1alpha1.TLSReadyCondition] = ok(authv1alpha1.ReasonPlainHTTP)
			f.set(authv1alpha1.BlacklistIntactCondition, metav1.ConditionFalse, authv1alpha1.ReasonStoreDataLost, "lost")
		},
		want: map[string]cond{
			authv1alpha1.KeysReadyCondition:       {metav1.ConditionTrue, authv1alpha1.ReasonKeysPublished, "fine"},
			authv1alpha1.BlacklistIntactCondition: {metav1.ConditionFalse, authv1alpha1.ReasonStoreDataLost, "lost"},
			authv1alpha1.ReadyCondition: {metav1.ConditionTrue, authv1alpha1.ReasonReady,
				"Signing keys are published, Redis is available and the verifier and the issuer are serving"},
		},
	}, {
		name:  "a condition nothing was found about keeps what an earlier pass set",
		prior: []metav1.Condition{{Type: authv1alpha1.ServerReadyCondition, Status: metav1.ConditionFalse, Reason: authv1alpha1.ReasonUnavailable, Message: "0 of 2 auth-server replicas available"}},
		found: func(f findings) {
			f[authv1alpha1.KeysReadyCondition] = ok(authv1alpha1.ReasonKeysPublished)
			f[authv1alpha1.RedisReadyCondition] = ok(authv1alpha1.ReasonReady)
			f[authv1alpha1.IssuerReadyCondition] = ok(authv1alpha1.ReasonReady)
			f[authv1alpha1.TLSReadyCondition] = ok(authv1alpha1.ReasonPlainHTTP)
		},
		want: map[string]cond{
			authv1alpha1.ServerReadyCondition: {metav1.ConditionFalse, authv1alpha1.ReasonUnavailable, "0 of 2 auth-server replicas available"},
			authv1alpha1.ReadyCondition:       {metav1.ConditionFalse, authv1alpha1.ReasonNotReady, "ServerReady: 0 of 2 auth-server replicas available"},
		},
	}, {
		name: "a later finding replaces an earlier one: the phase loop's failure wins",
		found: func(f findings) {
			f[authv1alpha1.KeysReadyCondition] = ok(authv1alpha1.ReasonKeysPublished)
			f[authv1alpha1.RedisReadyCondition] = ok(authv1alpha1.ReasonReady)
			f.set(authv1alpha1.ServerReadyCondition, metav1.ConditionFalse, authv1alpha1.ReasonProgressing, "rolling out")
			f.set(authv1alpha1.ServerReadyCondition, metav1.ConditionFalse, authv1alpha1.ReasonReconcileFailed, "Denied")
			f.set(authv1alpha1.IssuerReadyCondition, metav1.ConditionFalse, authv1alpha1.ReasonWaitingForRedis, "waiting")
			f.set(authv1alpha1.TLSReadyCondition, metav1.ConditionFalse, authv1alpha1.ReasonTLSSecretUnusable, "no Secret")
		},
		want: map[string]cond{
			authv1alpha1.ServerReadyCondition: {metav1.ConditionFalse, authv1alpha1.ReasonReconcileFailed, "Denied"},
			authv1alpha1.ReadyCondition:       {metav1.ConditionFalse, authv1alpha1.ReasonNotReady, "ServerReady: Denied; IssuerReady: waiting; TLSReady: no Secret"},
		},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			as := &authv1alpha1.AuthService{ObjectMeta: metav1.ObjectMeta{Generation: 3}}
			as.Status.Conditions = tc.prior
			found := findings{}
			tc.found(found)
			updateStatus(as, found)
			for typ, w := range tc.want {
				c := condition(as, typ)
				if c.Status != w.status || c.Reason != w.reason || c.Message != w.message {
					t.Errorf("%s = %s/%s %q, want %s/%s %q", typ, c.Status, c.Reason, c.Message, w.status, w.reason, w.message)
				}
			}
			var order []string
			for _, c := range as.Status.Conditions {
				order = append(order, c.Type)
				if c.Type != authv1alpha1.ServerReadyCondition || tc.prior == nil {
					if c.ObservedGeneration != 3 {
						t.Errorf("%s observedGeneration = %d, want 3", c.Type, c.ObservedGeneration)
					}
				}
			}
			if !strings.HasPrefix(strings.Join(order, ","), "Ready,KeysReady,RedisReady,ServerReady,IssuerReady,TLSReady") {
				t.Errorf("condition order = %v", order)
			}
		})
	}
}

func TestUpdateStatus_AnUnchangedReadyKeepsItsTransitionTime(t *testing.T) {
	as := &authv1alpha1.AuthService{ObjectMeta: metav1.ObjectMeta{Generation: 1}}
	found := findings{}
	found.set(authv1alpha1.ServerReadyCondition, metav1.ConditionFalse, authv1alpha1.ReasonUnavailable, "0 of 2 auth-server replicas available")
	updateStatus(as, found)
	transition := condition(as, authv1alpha1.ReadyCondition).LastTransitionTime
	updateStatus(as, found)
	if got := condition(as, authv1alpha1.ReadyCondition).LastTransitionTime; !got.Equal(&transition) {
		t.Error("an unchanged Ready moved its transition time")
	}
}
