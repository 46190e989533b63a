package controllers

import (
	"context"
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
	"github.com/hiringo/auth-operator/internal/testutil/poll"
)

func TestStatus_ObservedGenerationMovesOnlyWhenAPassSucceeds(t *testing.T) {
	ns := newNamespace(t)
	as := createAuthService(t, ns, "auth", nil)
	clk := clocktesting.NewFakePassiveClock(t0)
	reconcileOnce(t, newDirectReconciler(t, clk, nil), ns, "auth")
	as = get(t, ns, "auth", as)
	if as.Status.ObservedGeneration != as.Generation {
		t.Fatalf("observedGeneration = %d after a good pass, want %d", as.Status.ObservedGeneration, as.Generation)
	}
	first := as.Generation

	update(t, as, func(as *authv1alpha1.AuthService) { as.Spec.Server.Replicas = ptr.To[int32](3) })
	failing := newDirectReconciler(t, clk, clientWith(t, interceptor.Funcs{
		Apply: func(ctx context.Context, c client.WithWatch, obj runtime.ApplyConfiguration, opts ...client.ApplyOption) error {
			if u, ok := obj.(interface{ GetName() string }); ok && u.GetName() == named(ns, "auth").ServerName() {
				return errors.New("admission webhook \"policy.example.com\" denied the request")
			}
			return c.Apply(ctx, obj, opts...)
		},
	}))
	// A failing workload is retried soon, by a Result rather than an error, so that the
	// retry never delays a rotation (TestReconcile_AFailingWorkloadNeverDelaysARotation).
	if res, err := failing.Reconcile(context.Background(), request(ns, "auth")); err != nil || res.RequeueAfter != workloadRetry {
		t.Fatalf("a failed pass answered %v, %v; want RequeueAfter %s and no error", res, err, workloadRetry)
	}
	as = get(t, ns, "auth", as)
	if as.Status.ObservedGeneration != first {
		t.Errorf("observedGeneration = %d after a failed pass, want it kept at %d", as.Status.ObservedGeneration, first)
	}
	server := condition(as, authv1alpha1.ServerReadyCondition)
	if server.Status != metav1.ConditionFalse || server.Reason != authv1alpha1.ReasonReconcileFailed || !strings.Contains(server.Message, "denied the request") {
		t.Errorf("ServerReady = %+v", server)
	}
	if server.ObservedGeneration != as.Generation {
		t.Errorf("ServerReady observedGeneration = %d, want %d", server.ObservedGeneration, as.Generation)
	}
	if ready := condition(as, authv1alpha1.ReadyCondition); ready.Status != metav1.ConditionFalse || !strings.Contains(ready.Message, "ServerReady: ") {
		t.Errorf("Ready = %+v", ready)
	}
	waitEvent(t, ns, "auth", corev1.EventTypeWarning, authv1alpha1.ReasonReconcileFailed, "denied the request")

	reconcileOnce(t, newDirectReconciler(t, clk, nil), ns, "auth")
	if as = get(t, ns, "auth", as); as.Status.ObservedGeneration != as.Generation {
		t.Errorf("observedGeneration = %d after the next good pass, want %d", as.Status.ObservedGeneration, as.Generation)
	}
}

func TestStatus_ASecondPassWritesNothing(t *testing.T) {
	ns := newNamespace(t)
	createAuthService(t, ns, "auth", nil)
	clk := clocktesting.NewFakePassiveClock(t0)
	reconcileOnce(t, newDirectReconciler(t, clk, nil), ns, "auth")
	before := namespaceVersions(t, ns)
	clk.SetTime(t0.Add(10 * 60e9))
	reconcileOnce(t, newDirectReconciler(t, clk, nil), ns, "auth")
	after := namespaceVersions(t, ns)
	for k, v := range before {
		if after[k] != v {
			t.Errorf("%s was written again by a pass with nothing to do (resourceVersion %s -> %s)", k, v, after[k])
		}
	}
}

func TestMetrics_FollowTheAuthServiceAndForgetItWhenDeleted(t *testing.T) {
	ns := newNamespace(t)
	startManager(t, ns, clocktesting.NewFakePassiveClock(t0))
	createAuthService(t, ns, "auth", nil)
	waitCondition(t, ns, "auth", authv1alpha1.KeysReadyCondition, metav1.ConditionTrue, "")
	markStatefulSetAvailable(t, ns, "auth-redis")
	markDeploymentAvailable(t, ns, "auth-authserver")
	markDeploymentAvailable(t, ns, "auth-issuer")
	as := waitCondition(t, ns, "auth", authv1alpha1.ReadyCondition, metav1.ConditionTrue, "")
	poll.Until(t, waitTimeout, "ready gauge", func() error {
		if v, ok := gaugeValue(t, "authoperator_authservice_ready_status", ns); !ok || v != 1 {
			return errorf("ready_status = %v (present %v)", v, ok)
		}
		return nil
	})
	if v, ok := gaugeValue(t, "authoperator_next_rotation_timestamp_seconds", ns); !ok || int64(v) != as.Status.NextRotationTime.Unix() {
		t.Errorf("next_rotation_timestamp_seconds = %v, want %d", v, as.Status.NextRotationTime.Unix())
	}
	if err := k8sClient.Delete(context.Background(), as); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, waitTimeout, "series dropped", func() error {
		for _, name := range []string{"authoperator_authservice_ready_status", "authoperator_next_rotation_timestamp_seconds"} {
			if _, ok := gaugeValue(t, name, ns); ok {
				return errorf("%s still reported for a deleted AuthService", name)
			}
		}
		return nil
	})
}

// gaugeValue reads the series of a gauge for the AuthService "auth" in namespace ns.
func gaugeValue(t *testing.T, name, ns string) (float64, bool) {
	t.Helper()
	families, err := ctrlmetrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["namespace"] == ns && labels["name"] == "auth" {
				return m.GetGauge().GetValue(), true
			}
		}
	}
	return 0, false
}
