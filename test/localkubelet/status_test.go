package localkubelet

import (
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func condition(st appsv1.DeploymentStatus, t appsv1.DeploymentConditionType) appsv1.DeploymentCondition {
	for _, c := range st.Conditions {
		if c.Type == t {
			return c
		}
	}
	return appsv1.DeploymentCondition{}
}

func TestDeploymentStatus_CompleteRollout(t *testing.T) {
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "demo-authserver", Generation: 3},
		Spec:       appsv1.DeploymentSpec{Replicas: ptr.To[int32](2), Strategy: zeroUnavailable()},
	}
	now := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	st := deploymentStatus(d, "h", []podSummary{
		{Name: "a", Hash: "h", Ready: true, Available: true},
		{Name: "b", Hash: "h", Ready: true, Available: true},
		{Name: "c", Hash: "old", Terminating: true},
	}, now)
	if st.ObservedGeneration != 3 || st.Replicas != 2 || st.UpdatedReplicas != 2 || st.ReadyReplicas != 2 || st.AvailableReplicas != 2 || st.UnavailableReplicas != 0 {
		t.Errorf("counts = %+v", st)
	}
	if c := condition(st, appsv1.DeploymentAvailable); c.Status != corev1.ConditionTrue || c.Reason != "MinimumReplicasAvailable" {
		t.Errorf("Available = %+v", c)
	}
	if c := condition(st, appsv1.DeploymentProgressing); c.Status != corev1.ConditionTrue || c.Reason != "NewReplicaSetAvailable" {
		t.Errorf("Progressing = %+v", c)
	}
}

func TestDeploymentStatus_NotAvailableAndKeepsTransitionTime(t *testing.T) {
	earlier := metav1.NewTime(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "demo-authserver", Generation: 1},
		Spec:       appsv1.DeploymentSpec{Replicas: ptr.To[int32](2), Strategy: zeroUnavailable()},
		Status: appsv1.DeploymentStatus{Conditions: []appsv1.DeploymentCondition{{
			Type: appsv1.DeploymentAvailable, Status: corev1.ConditionFalse, Reason: "MinimumReplicasUnavailable",
			Message: "Deployment does not have minimum availability.", LastUpdateTime: earlier, LastTransitionTime: earlier,
		}}},
	}
	now := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	st := deploymentStatus(d, "h", []podSummary{{Name: "a", Hash: "h", Ready: true, Available: true}, {Name: "b", Hash: "h"}}, now)
	c := condition(st, appsv1.DeploymentAvailable)
	if c.Status != corev1.ConditionFalse || !c.LastTransitionTime.Equal(&earlier) || !c.LastUpdateTime.Equal(&earlier) {
		t.Errorf("Available = %+v, want False with the earlier times kept", c)
	}
	if st.UnavailableReplicas != 1 {
		t.Errorf("unavailableReplicas = %d, want 1", st.UnavailableReplicas)
	}
	if c := condition(st, appsv1.DeploymentProgressing); c.Reason != "ReplicaSetUpdated" {
		t.Errorf("Progressing = %+v", c)
	}
}

func TestStatefulSetStatus(t *testing.T) {
	s := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "demo-redis", Generation: 2}}
	st := statefulSetStatus(s, "h", []podSummary{{Name: "demo-redis-0", Hash: "h", Ready: true, Available: true}})
	if st.ObservedGeneration != 2 || st.Replicas != 1 || st.ReadyReplicas != 1 || st.AvailableReplicas != 1 || st.UpdatedReplicas != 1 || st.CurrentReplicas != 1 {
		t.Errorf("status = %+v", st)
	}
	if st.UpdateRevision != "demo-redis-h" || st.CurrentRevision != st.UpdateRevision {
		t.Errorf("revisions = %q %q", st.CurrentRevision, st.UpdateRevision)
	}
}
