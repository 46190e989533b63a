package controllers

import (
	"errors"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
)

// withSetters replaces the condition setters for one test with ones that return what
// found holds, so that updateStatus is tested apart from what each setter chooses (which
// status_conditions_test.go covers).
func withSetters(t *testing.T, found map[string]*metav1.Condition) {
	t.Helper()
	saved := conditionSetters
	t.Cleanup(func() { conditionSetters = saved })
	conditionSetters = map[string]func(*scope) *metav1.Condition{}
	for typ := range saved {
		conditionSetters[typ] = func(*scope) *metav1.Condition {
			if c := found[typ]; c != nil {
				copied := *c
				return &copied
			}
			return nil
		}
	}
}

// updateStatus is pure: these cases feed it what the setters chose, the errors that ended
// phases (and what an earlier pass left in the status) and compare every condition it sets,
// without a server.
func TestUpdateStatus_DerivesEveryConditionFromTheFindings(t *testing.T) {
	type want struct {
		status  metav1.ConditionStatus
		reason  string
		message string
	}
	ok := func(reason string) *metav1.Condition { return cond(metav1.ConditionTrue, reason, "fine") }
	conflict := apierrors.NewConflict(schema.GroupResource{Resource: "secrets"}, "auth-signing-keys", errors.New("the object has been modified"))
	cases := []struct {
		name   string
		prior  []metav1.Condition
		found  map[string]*metav1.Condition
		failed map[string]error
		want   map[string]want
		// reported are the reasons of the conditions updateStatus says this pass found, in order.
		reported []string
	}{{
		name: "nothing found yet (every phase lost a write race): every readiness condition is Pending and Ready names them all",
		failed: map[string]error{
			authv1alpha1.KeysReadyCondition: conflict, authv1alpha1.RedisReadyCondition: conflict, authv1alpha1.ServerReadyCondition: conflict,
			authv1alpha1.IssuerReadyCondition: conflict, authv1alpha1.TLSReadyCondition: conflict,
		},
		want: map[string]want{
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
		found: map[string]*metav1.Condition{
			authv1alpha1.KeysReadyCondition:       ok(authv1alpha1.ReasonKeysPublished),
			authv1alpha1.RedisReadyCondition:      ok(authv1alpha1.ReasonReady),
			authv1alpha1.ServerReadyCondition:     ok(authv1alpha1.ReasonReady),
			authv1alpha1.IssuerReadyCondition:     ok(authv1alpha1.ReasonReady),
			authv1alpha1.TLSReadyCondition:        ok(authv1alpha1.ReasonPlainHTTP),
			authv1alpha1.BlacklistIntactCondition: cond(metav1.ConditionFalse, authv1alpha1.ReasonStoreDataLost, "lost"),
		},
		want: map[string]want{
			authv1alpha1.KeysReadyCondition:       {metav1.ConditionTrue, authv1alpha1.ReasonKeysPublished, "fine"},
			authv1alpha1.BlacklistIntactCondition: {metav1.ConditionFalse, authv1alpha1.ReasonStoreDataLost, "lost"},
			authv1alpha1.ReadyCondition: {metav1.ConditionTrue, authv1alpha1.ReasonReady,
				"Signing keys are published, Redis is available and the verifier and the issuer are serving"},
		},
		reported: []string{authv1alpha1.ReasonKeysPublished, authv1alpha1.ReasonReady, authv1alpha1.ReasonReady, authv1alpha1.ReasonReady, authv1alpha1.ReasonPlainHTTP, authv1alpha1.ReasonStoreDataLost},
	}, {
		name:  "a condition nothing was found about keeps what an earlier pass set",
		prior: []metav1.Condition{{Type: authv1alpha1.ServerReadyCondition, Status: metav1.ConditionFalse, Reason: authv1alpha1.ReasonUnavailable, Message: "0 of 2 auth-server replicas available"}},
		found: map[string]*metav1.Condition{
			authv1alpha1.KeysReadyCondition:   ok(authv1alpha1.ReasonKeysPublished),
			authv1alpha1.RedisReadyCondition:  ok(authv1alpha1.ReasonReady),
			authv1alpha1.IssuerReadyCondition: ok(authv1alpha1.ReasonReady),
			authv1alpha1.TLSReadyCondition:    ok(authv1alpha1.ReasonPlainHTTP),
		},
		want: map[string]want{
			authv1alpha1.ServerReadyCondition: {metav1.ConditionFalse, authv1alpha1.ReasonUnavailable, "0 of 2 auth-server replicas available"},
			authv1alpha1.ReadyCondition:       {metav1.ConditionFalse, authv1alpha1.ReasonNotReady, "ServerReady: 0 of 2 auth-server replicas available"},
		},
	}, {
		name: "the error that ended a phase replaces what the phase found; a lost write race keeps the earlier condition",
		prior: []metav1.Condition{
			{Type: authv1alpha1.RedisReadyCondition, Status: metav1.ConditionTrue, Reason: authv1alpha1.ReasonReady, Message: "up"},
			{Type: authv1alpha1.IssuerReadyCondition, Status: metav1.ConditionFalse, Reason: authv1alpha1.ReasonProgressing, Message: "rolling"},
		},
		found: map[string]*metav1.Condition{
			authv1alpha1.KeysReadyCondition:   ok(authv1alpha1.ReasonKeysPublished),
			authv1alpha1.RedisReadyCondition:  cond(metav1.ConditionFalse, authv1alpha1.ReasonUnavailable, "down"),
			authv1alpha1.ServerReadyCondition: cond(metav1.ConditionFalse, authv1alpha1.ReasonProgressing, "rolling out"),
			authv1alpha1.IssuerReadyCondition: cond(metav1.ConditionFalse, authv1alpha1.ReasonWaitingForRedis, "waiting"),
			authv1alpha1.TLSReadyCondition:    cond(metav1.ConditionFalse, authv1alpha1.ReasonTLSSecretUnusable, "no Secret"),
		},
		failed: map[string]error{
			authv1alpha1.RedisReadyCondition:  conflict,
			authv1alpha1.ServerReadyCondition: errors.New("admission webhook denied the request"),
			authv1alpha1.IssuerReadyCondition: &foreignObjectError{kind: "Service", name: "auth-issuer", why: "controlled by Service other"},
		},
		want: map[string]want{
			authv1alpha1.RedisReadyCondition:  {metav1.ConditionTrue, authv1alpha1.ReasonReady, "up"},
			authv1alpha1.ServerReadyCondition: {metav1.ConditionFalse, authv1alpha1.ReasonReconcileFailed, "Admission webhook denied the request"},
			authv1alpha1.IssuerReadyCondition: {metav1.ConditionFalse, authv1alpha1.ReasonForeignObject,
				"Service auth-issuer already exists and is not this AuthService's (controlled by Service other): the operator will not take it over; rename or delete it, or give the AuthService another name"},
			authv1alpha1.ReadyCondition: {metav1.ConditionFalse, authv1alpha1.ReasonNotReady,
				"ServerReady: Admission webhook denied the request; IssuerReady: Service auth-issuer already exists and is not this AuthService's (controlled by Service other): the operator will not take it over; rename or delete it, or give the AuthService another name; TLSReady: no Secret"},
		},
		reported: []string{authv1alpha1.ReasonKeysPublished, authv1alpha1.ReasonReconcileFailed, authv1alpha1.ReasonForeignObject, authv1alpha1.ReasonTLSSecretUnusable},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			withSetters(t, tc.found)
			as := &authv1alpha1.AuthService{ObjectMeta: metav1.ObjectMeta{Generation: 3}}
			as.Status.Conditions = tc.prior
			s := &scope{as: as, failed: tc.failed}
			var reasons []string
			for _, c := range updateStatus(s) {
				reasons = append(reasons, c.Reason)
			}
			if tc.reported != nil && strings.Join(reasons, ",") != strings.Join(tc.reported, ",") {
				t.Errorf("found this pass: %v, want %v", reasons, tc.reported)
			}
			for typ, w := range tc.want {
				c := condition(as, typ)
				if c.Status != w.status || c.Reason != w.reason || c.Message != w.message {
					t.Errorf("%s = %s/%s %q, want %s/%s %q", typ, c.Status, c.Reason, c.Message, w.status, w.reason, w.message)
				}
			}
			var order []string
			for _, c := range as.Status.Conditions {
				order = append(order, c.Type)
				if tc.prior == nil && c.ObservedGeneration != 3 {
					t.Errorf("%s observedGeneration = %d, want 3", c.Type, c.ObservedGeneration)
				}
			}
			if !strings.HasPrefix(strings.Join(order, ","), "Ready,KeysReady,RedisReady,ServerReady,IssuerReady,TLSReady") {
				t.Errorf("condition order = %v", order)
			}
		})
	}
}

func TestUpdateStatus_AnUnchangedReadyKeepsItsTransitionTime(t *testing.T) {
	withSetters(t, map[string]*metav1.Condition{
		authv1alpha1.ServerReadyCondition: cond(metav1.ConditionFalse, authv1alpha1.ReasonUnavailable, "0 of 2 auth-server replicas available"),
	})
	as := &authv1alpha1.AuthService{ObjectMeta: metav1.ObjectMeta{Generation: 1}}
	updateStatus(&scope{as: as})
	transition := condition(as, authv1alpha1.ReadyCondition).LastTransitionTime
	updateStatus(&scope{as: as})
	if got := condition(as, authv1alpha1.ReadyCondition).LastTransitionTime; !got.Equal(&transition) {
		t.Error("an unchanged Ready moved its transition time")
	}
}
