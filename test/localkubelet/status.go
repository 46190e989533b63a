package localkubelet

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// deploymentStatus computes the status the Deployment controller would report for the
// local pods of d whose current template hash is hash. Condition transition times are
// kept from prev when a condition's status does not change.
func deploymentStatus(d *appsv1.Deployment, hash string, pods []podSummary, now metav1.Time) appsv1.DeploymentStatus {
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	var st appsv1.DeploymentStatus
	st.ObservedGeneration = d.Generation
	for _, p := range pods {
		if p.Terminating {
			continue
		}
		st.Replicas++
		if p.Hash == hash {
			st.UpdatedReplicas++
		}
		if p.Ready {
			st.ReadyReplicas++
		}
		if p.Available {
			st.AvailableReplicas++
		}
	}
	if u := want - st.AvailableReplicas; u > 0 {
		st.UnavailableReplicas = u
	}
	_, unavailable := rollingParams(want, d.Spec.Strategy)
	if d.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType {
		unavailable = 0
	}
	rsName := d.Name + "-" + hash

	available := appsv1.DeploymentCondition{
		Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue,
		Reason: "MinimumReplicasAvailable", Message: "Deployment has minimum availability.",
	}
	if st.AvailableReplicas < want-int32(unavailable) {
		available.Status, available.Reason, available.Message = corev1.ConditionFalse,
			"MinimumReplicasUnavailable", "Deployment does not have minimum availability."
	}
	progressing := appsv1.DeploymentCondition{
		Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue,
		Reason: "ReplicaSetUpdated", Message: fmt.Sprintf("ReplicaSet %q is progressing.", rsName),
	}
	if st.UpdatedReplicas == want && st.Replicas == want && st.AvailableReplicas == want {
		progressing.Reason, progressing.Message = "NewReplicaSetAvailable",
			fmt.Sprintf("ReplicaSet %q has successfully progressed.", rsName)
	}
	st.Conditions = []appsv1.DeploymentCondition{
		keepDeploymentConditionTimes(available, d.Status.Conditions, now),
		keepDeploymentConditionTimes(progressing, d.Status.Conditions, now),
	}
	return st
}

func keepDeploymentConditionTimes(c appsv1.DeploymentCondition, prev []appsv1.DeploymentCondition, now metav1.Time) appsv1.DeploymentCondition {
	c.LastUpdateTime, c.LastTransitionTime = now, now
	for _, p := range prev {
		if p.Type != c.Type {
			continue
		}
		if p.Status == c.Status {
			c.LastTransitionTime = p.LastTransitionTime
			if p.Reason == c.Reason && p.Message == c.Message {
				c.LastUpdateTime = p.LastUpdateTime
			}
		}
	}
	return c
}

// statefulSetStatus computes the status the StatefulSet controller would report for the
// local pods of s whose current template hash is hash.
func statefulSetStatus(s *appsv1.StatefulSet, hash string, pods []podSummary) appsv1.StatefulSetStatus {
	st := appsv1.StatefulSetStatus{
		ObservedGeneration: s.Generation,
		UpdateRevision:     s.Name + "-" + hash,
		Conditions:         s.Status.Conditions,
	}
	for _, p := range pods {
		if p.Terminating {
			continue
		}
		st.Replicas++
		if p.Ready {
			st.ReadyReplicas++
		}
		if p.Available {
			st.AvailableReplicas++
		}
		if p.Hash == hash {
			st.UpdatedReplicas++
		}
	}
	st.CurrentRevision = st.UpdateRevision
	st.CurrentReplicas = st.UpdatedReplicas
	return st
}
