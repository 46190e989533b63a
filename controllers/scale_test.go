package controllers

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
	"github.com/hiringo/auth-operator/internal/testutil/poll"
)

// scaleEnv turns on TestScale_ManyAuthServices; its value is the number of AuthServices.
const scaleEnv = "AUTHOPERATOR_SCALE"

// TestScale_ManyAuthServices is the load run of the operator, not a timed test: it creates
// many AuthServices at once against the real API server and reports how long the operator
// took to reach a steady state and how many passes each object cost. It asserts behaviour
// only: everything becomes Ready, and once Ready nothing is reconciled again. The operator
// runs on an injected clock, which the steady-state check shares: nothing waits for time.
//
//	AUTHOPERATOR_SCALE=200 go test ./controllers -run TestScale -v -timeout 20m
func TestScale_ManyAuthServices(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv(scaleEnv))
	if n <= 0 {
		t.Skipf("set %s=<count> (e.g. 200) to run the load run", scaleEnv)
	}
	ns := newNamespace(t)
	clk := clocktesting.NewFakePassiveClock(time.Now())
	startManager(t, ns, clk)
	ctx := context.Background()
	startPasses := reconcileTotal(t)

	start := time.Now()
	for i := range n {
		as := &authv1alpha1.AuthService{}
		as.Namespace, as.Name = ns, fmt.Sprintf("svc-%03d", i)
		if err := k8sClient.Create(ctx, as); err != nil {
			t.Fatal(err)
		}
	}
	created := time.Since(start)

	waitAll(t, ns, n, func(as *authv1alpha1.AuthService) bool {
		return meta.IsStatusConditionTrue(as.Status.Conditions, authv1alpha1.KeysReadyCondition) &&
			meta.FindStatusCondition(as.Status.Conditions, authv1alpha1.ServerReadyCondition) != nil &&
			as.Status.ObservedGeneration == as.Generation
	})
	objectsUp := time.Since(start)
	passesToObjects := reconcileTotal(t) - startPasses

	// Play the workload controllers for every Redis and auth server, then wait for Ready.
	statusStart := time.Now()
	sets := &appsv1.StatefulSetList{}
	deployments := &appsv1.DeploymentList{}
	if err := k8sClient.List(ctx, sets, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	if err := k8sClient.List(ctx, deployments, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for i := range sets.Items {
		s := &sets.Items[i]
		s.Status = appsv1.StatefulSetStatus{ObservedGeneration: s.Generation, Replicas: 1, ReadyReplicas: 1, AvailableReplicas: 1, CurrentReplicas: 1, UpdatedReplicas: 1}
		if err := k8sClient.Status().Update(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	for i := range deployments.Items {
		d := &deployments.Items[i]
		r := ptr.Deref(d.Spec.Replicas, 1)
		d.Status = appsv1.DeploymentStatus{ObservedGeneration: d.Generation, Replicas: r, UpdatedReplicas: r, ReadyReplicas: r, AvailableReplicas: r}
		if err := k8sClient.Status().Update(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	waitAll(t, ns, n, func(as *authv1alpha1.AuthService) bool {
		return meta.IsStatusConditionTrue(as.Status.Conditions, authv1alpha1.ReadyCondition)
	})
	ready := time.Since(start)
	readyAfterStatus := time.Since(statusStart)
	passesToReady := reconcileTotal(t) - startPasses

	// Steady state: with the controller's queue drained, a pass over each AuthService (as
	// the operator would make it, on its clock) writes nothing, so no event can bring
	// another, and asks to come back no sooner than the key schedule; meanwhile the operator
	// makes no pass of its own. Once Ready, nothing re-triggers the controller.
	poll.Until(t, 10*time.Minute, "the controller's queue drained", func() error {
		if depth, busy := controllerMetric(t, "workqueue_depth", "name"), controllerMetric(t, "controller_runtime_active_workers", "controller"); depth+busy != 0 {
			return fmt.Errorf("%v queued, %v passes running", depth, busy)
		}
		return nil
	})
	settled, versions := reconcileTotal(t), namespaceVersions(t, ns)
	direct := newDirectReconciler(t, clk, nil)
	for i := range n {
		if res := reconcileOnce(t, direct, ns, fmt.Sprintf("svc-%03d", i)); res.RequeueAfter < time.Hour {
			t.Errorf("svc-%03d: a pass in the steady state asks to come back after %s", i, res.RequeueAfter)
		}
	}
	for k, v := range namespaceVersions(t, ns) {
		if versions[k] != v {
			t.Errorf("%s was written by a pass in the steady state (resourceVersion %s -> %s)", k, versions[k], v)
		}
	}
	idle := reconcileTotal(t) - settled
	if idle != 0 {
		t.Errorf("%v passes of the operator in the steady state: something keeps re-triggering the controller", idle)
	}

	t.Logf("AuthServices: %d (4 concurrent reconciles, envtest kube-apiserver + etcd on this machine)", n)
	t.Logf("create calls done after %s", created.Round(time.Millisecond))
	t.Logf("every object created, keys published, status observed: %s after the first create", objectsUp.Round(time.Millisecond))
	t.Logf("Ready everywhere: %s after the first create (%s after the workload statuses were written)", ready.Round(time.Millisecond), readyAfterStatus.Round(time.Millisecond))
	t.Logf("passes: %.0f to create everything (%.2f per AuthService), %.0f to Ready (%.2f per AuthService), %v while idle",
		passesToObjects, passesToObjects/float64(n), passesToReady, passesToReady/float64(n), idle)
}

// waitAll waits, without a fixed budget per object, until done holds for all n AuthServices.
func waitAll(t *testing.T, ns string, n int, done func(*authv1alpha1.AuthService) bool) {
	t.Helper()
	poll.Until(t, 10*time.Minute, "every AuthService there", func() error {
		list := &authv1alpha1.AuthServiceList{}
		if err := k8sClient.List(context.Background(), list, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
		count := 0
		for i := range list.Items {
			if done(&list.Items[i]) {
				count++
			}
		}
		if count != n {
			return fmt.Errorf("only %d of %d", count, n)
		}
		return nil
	})
}

// reconcileTotal reads controller-runtime's own count of the controller's passes.
func reconcileTotal(t *testing.T) float64 {
	t.Helper()
	return controllerMetric(t, "controller_runtime_reconcile_total", "controller")
}

// controllerMetric sums the series of a controller-runtime counter or gauge whose label
// (controller, or name for the work queue's) is the controller's name.
func controllerMetric(t *testing.T, name, label string) float64 {
	t.Helper()
	families, err := ctrlmetrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var total float64
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == "authservice" {
					total += m.GetCounter().GetValue() + m.GetGauge().GetValue()
				}
			}
		}
	}
	return total
}
