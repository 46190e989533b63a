//go:build !unit

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
	"k8s.io/utils/clock"
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
// only: everything becomes Ready, and once Ready nothing is reconciled again.
//
//	AUTHOPERATOR_SCALE=200 go test ./controllers -run TestScale -v -timeout 20m
func TestScale_ManyAuthServices(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv(scaleEnv))
	if n <= 0 {
		t.Skipf("set %s=<count> (e.g. 200) to run the load run", scaleEnv)
	}
	ns := newNamespace(t)
	startManager(t, ns, clock.RealClock{})
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

	// Steady state: once the last events have drained, nothing changing means no passes.
	time.Sleep(3 * time.Second)
	settled := reconcileTotal(t)
	time.Sleep(5 * time.Second)
	idle := reconcileTotal(t) - settled
	if idle != 0 {
		t.Errorf("%v passes in 5s of steady state: something keeps re-triggering the controller", idle)
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
	families, err := ctrlmetrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var total float64
	for _, f := range families {
		if f.GetName() != "controller_runtime_reconcile_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "controller" && l.GetValue() == "authservice" {
					total += m.GetCounter().GetValue()
				}
			}
		}
	}
	return total
}
