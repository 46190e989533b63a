package controllers

import (
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
	"github.com/hiringo/auth-operator/controllers/managedredis"
)

// redisReadyCondition chooses RedisReady: the Redis the servers use, or what keeps them off.
func redisReadyCondition(s *scope) *metav1.Condition {
	as, f := s.as, s.redisFound
	switch {
	case keyPrefixProblem(as) != "":
		return cond(metav1.ConditionFalse, authv1alpha1.ReasonKeyPrefixInvalid, keyPrefixProblem(as))
	case f.unusable != nil:
		return cond(metav1.ConditionFalse, authv1alpha1.ReasonRedisSecretUnusable, fmt.Sprintf(
			"%s names Secret %s, which this AuthService cannot use: it must exist in namespace %s with a non-empty key %q%s; create or fix it",
			f.unusableField, f.unusable.Name, as.Namespace, f.unusable.Key, useLabelRequirement(s)))
	case as.Spec.Redis.External != nil && s.redis != nil:
		return cond(metav1.ConditionTrue, authv1alpha1.ReasonExternalRedis, fmt.Sprintf(
			"Using the external Redis at %s; the auth server's readiness reports whether it answers", strings.Join(s.redis.addresses, ",")))
	case as.Spec.Redis.Managed == nil:
		return nil
	case f.badPassword != nil:
		return cond(metav1.ConditionFalse, authv1alpha1.ReasonRedisPasswordInvalid, fmt.Sprintf(
			"Secret %s: %v; Redis and the auth server are left as they are: set a valid password, or remove the key to have a new one generated",
			as.RedisName(), f.badPassword))
	case managedredis.Replicated(as) && s.image == "":
		return cond(metav1.ConditionFalse, authv1alpha1.ReasonNoImage,
			"No auth-server image for the Redis pods' topology init step: set spec.server.image, or start the operator with --authserver-image")
	case f.replacing != nil && !f.replacing.DeletionTimestamp.IsZero():
		return cond(metav1.ConditionFalse, authv1alpha1.ReasonProgressing, fmt.Sprintf(
			"Waiting for the garbage collector to release the pods of the old StatefulSet %s, which the new one adopts with their volumes", f.replacing.Name))
	case f.replacing != nil:
		return cond(metav1.ConditionFalse, authv1alpha1.ReasonProgressing, fmt.Sprintf(
			"Replacing StatefulSet %s for the switch between one Redis pod and replicated Redis; its pods and volumes are kept", f.replacing.Name))
	case f.unobserved != nil && managedredis.Replicated(as):
		return cond(metav1.ConditionUnknown, authv1alpha1.ReasonProgressing, fmt.Sprintf("Waiting to observe StatefulSet %s: %v", f.unobservedName, f.unobserved))
	case f.unobserved != nil:
		return cond(metav1.ConditionUnknown, authv1alpha1.ReasonProgressing, fmt.Sprintf("Waiting to observe Redis %s: %v", as.RedisName(), f.unobserved))
	case f.workload == nil:
		return nil
	}
	var c *metav1.Condition
	if redisSet, ok := f.workload.(*appsv1.StatefulSet); ok && managedredis.Replicated(as) {
		c = replicatedRedisReadiness(as, redisSet, f.sentinels)
	} else {
		c = singleRedisReadiness(as, f.workload)
	}
	if c.Status == metav1.ConditionTrue && f.claimKept {
		p := managedredis.Spec(as).Persistence
		c.Message += fmt.Sprintf("; spec.redis.managed.persistence (size %s, storage class %q) is not applied: a StatefulSet's volume claim template cannot change. "+
			"Resize the PersistentVolumeClaim data-%s-0 if its storage class allows expansion, or delete the StatefulSet with --cascade=orphan so the operator recreates it",
			p.Size, ptr.Deref(p.StorageClassName, ""), as.RedisName())
	}
	return c
}

// singleRedisReadiness judges the one Redis pod's StatefulSet or Deployment.
func singleRedisReadiness(as *authv1alpha1.AuthService, workload any) *metav1.Condition {
	var ready int32
	var current bool
	switch w := workload.(type) {
	case *appsv1.StatefulSet:
		// Rolled out as `kubectl rollout status` judges it: after a switch from replicated
		// Redis, not before the extra pods are gone and pod 0 runs the one-pod template.
		want := ptr.Deref(w.Spec.Replicas, 1)
		ready = w.Status.AvailableReplicas
		current = w.Status.ObservedGeneration >= w.Generation && w.Status.Replicas == want && w.Status.UpdatedReplicas >= want
	case *appsv1.Deployment:
		ready, current = w.Status.AvailableReplicas, w.Status.ObservedGeneration >= w.Generation
	}
	switch {
	case ready >= 1 && current:
		return cond(metav1.ConditionTrue, authv1alpha1.ReasonReady, fmt.Sprintf("Redis is available at %s", managedredis.ServiceAddress(as)))
	case ready >= 1:
		return cond(metav1.ConditionFalse, authv1alpha1.ReasonProgressing, fmt.Sprintf("Redis %s is rolling out a change", as.RedisName()))
	default:
		return cond(metav1.ConditionFalse, authv1alpha1.ReasonUnavailable, fmt.Sprintf("Redis %s has no available pod yet", as.RedisName()))
	}
}

// replicatedRedisReadiness judges the Redis and Sentinel StatefulSets' status. Redis is
// ready when a primary and the replicas that acknowledge logouts are available and a
// Sentinel majority is up: fewer, and logouts answer 503 or a failover cannot happen.
// sentinels is nil while the Sentinels wait for a Redis pod.
func replicatedRedisReadiness(as *authv1alpha1.AuthService, redisSet, sentinels *appsv1.StatefulSet) *metav1.Condition {
	if sentinels == nil {
		return cond(metav1.ConditionFalse, authv1alpha1.ReasonUnavailable, fmt.Sprintf("Waiting for a Redis pod of %s before the Sentinels start", redisSet.Name))
	}
	h := managedredis.HA(as)
	needRedis := h.MinReplicasAcked + 1
	current := redisSet.Status.ObservedGeneration >= redisSet.Generation && sentinels.Status.ObservedGeneration >= sentinels.Generation
	redisUp, sentinelsUp := redisSet.Status.AvailableReplicas, sentinels.Status.AvailableReplicas
	counts := fmt.Sprintf("%d of %d Redis pods and %d of %d Sentinels available", redisUp, h.Replicas, sentinelsUp, h.Sentinels)
	switch {
	case redisUp < needRedis || sentinelsUp < h.Quorum():
		return cond(metav1.ConditionFalse, authv1alpha1.ReasonUnavailable,
			fmt.Sprintf("%s; needed: %d Redis pods (the primary and minReplicasAcked replicas) and %d Sentinels (a majority)", counts, needRedis, h.Quorum()))
	case !current:
		return cond(metav1.ConditionFalse, authv1alpha1.ReasonProgressing, "Redis is rolling out a change; "+counts)
	default:
		return cond(metav1.ConditionTrue, authv1alpha1.ReasonReady, fmt.Sprintf("Redis is available through the Sentinels at %s; %s", managedredis.SentinelAddress(as), counts))
	}
}
