package controllers

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
)

// reconcileReplicatedRedis runs the managed Redis as a primary, replicas and Sentinels.
// Moving from one pod keeps its data: the StatefulSet NAME-redis is replaced (its
// governing Service cannot change in place) with its pods orphaned, so pod 0 keeps its
// volume data-NAME-redis-0 and serves until the new StatefulSet has started the replicas,
// which copy it; then pod 0 is rolled and rejoins behind whichever primary the Sentinels
// chose. The single-pod Service NAME-redis goes: it would spread clients over replicas.
func (r *AuthServiceReconciler) reconcileReplicatedRedis(ctx context.Context, s *scope, version string) error {
	as, image := s.as, s.image
	if image == "" {
		return nil
	}
	h := haSettingsOf(as)
	if err := r.deleteOwned(ctx, as, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: as.RedisName()}}); err != nil {
		return err
	}
	redisSet := redisHAStatefulSet(as, h, version, image)
	if replacing, err := r.replaceForNewGoverningService(ctx, s, redisSet); err != nil || replacing {
		return err
	}
	existing, err := r.storedStatefulSet(ctx, redisSet)
	if err != nil {
		return err
	}
	redisSet, s.redisFound.claimKept = keepVolumeClaimTemplate(existing, redisSet)
	scaled, err := r.podZeroIsReplicated(ctx, redisSet)
	if err != nil {
		return err
	}
	if !scaled {
		redisSet.Spec.Replicas = ptr.To[int32](1)
	}
	for _, obj := range []client.Object{
		redisHeadlessService(as), redisSet, sentinelService(as), redisHANetworkPolicy(as),
		haPodDisruptionBudget(as, as.RedisName(), appRedis), haPodDisruptionBudget(as, as.RedisSentinelName(), appSentinel),
	} {
		if err := r.apply(ctx, as, obj); err != nil {
			return err
		}
	}
	// The Sentinels start once a Redis pod is available: a Sentinel monitors a primary by
	// name, and pod 0 has none before it exists. Once they run, they stay.
	sentinels := sentinelStatefulSet(as, h, version, image)
	start, err := r.sentinelsMayStart(ctx, redisSet, sentinels)
	if err != nil {
		return err
	}
	if start {
		if err := r.apply(ctx, as, sentinels); err != nil {
			return err
		}
	}
	conn := haConnection(as, h, version)
	s.redis = &conn
	// The single pod's Service stays until every auth server connects through the
	// Sentinels: the ones still rolling keep reaching pod 0 through it meanwhile.
	if r.serversUseSentinels(ctx, as) {
		if err := r.deleteOwned(ctx, as, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: as.RedisName()}}); err != nil {
			return err
		}
	}
	// Read back, the two StatefulSets tell whether a primary, the replicas that acknowledge
	// logouts and a Sentinel majority are up.
	if r.observe(ctx, s, redisSet) {
		switch err := r.Client.Get(ctx, client.ObjectKeyFromObject(sentinels), sentinels); {
		case err == nil:
			s.redisFound.sentinels = sentinels
		case !apierrors.IsNotFound(err):
			s.redisFound.unobserved, s.redisFound.unobservedName = err, sentinels.Name
		}
	}
	return nil
}

// removeReplicatedRedis deletes what only the replicated Redis has, after a switch to one
// pod or to an external Redis. The Redis StatefulSet itself is replaced by the caller.
func (r *AuthServiceReconciler) removeReplicatedRedis(ctx context.Context, as *authv1alpha1.AuthService) error {
	for _, obj := range []client.Object{
		&appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: as.RedisSentinelName()}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: as.RedisSentinelName()}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: as.RedisHeadlessName()}},
		&policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: as.RedisName()}},
		&policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: as.RedisSentinelName()}},
	} {
		if err := r.deleteOwned(ctx, as, obj); err != nil {
			return err
		}
	}
	return nil
}

// replaceForNewGoverningService deletes the StatefulSet named like desired, orphaning its
// pods, when it is governed by another Service (single pod: NAME-redis; replicated:
// NAME-redis-headless), which the API server does not let change. It reports whether a
// replacement is under way: the caller writes the new one once the old one is gone (the
// garbage collector removes it after releasing its pods; its deletion is watched). The
// volumes stay, as a StatefulSet's claims outlive it; the new StatefulSet adopts the pods
// and rolls them, so no pod stops before its successor's peers are up.
func (r *AuthServiceReconciler) replaceForNewGoverningService(ctx context.Context, s *scope, desired *appsv1.StatefulSet) (bool, error) {
	as := s.as
	existing := &appsv1.StatefulSet{}
	if err := r.Client.Get(ctx, client.ObjectKeyFromObject(desired), existing); err != nil {
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return false, fmt.Errorf("reading StatefulSet %s: %w", desired.Name, err)
	}
	if !metav1.IsControlledBy(existing, as) {
		// apply refuses it with a ForeignObject condition.
		return false, nil
	}
	if existing.DeletionTimestamp.IsZero() && existing.Spec.ServiceName == desired.Spec.ServiceName {
		return false, nil
	}
	if existing.DeletionTimestamp.IsZero() {
		if err := r.Client.Delete(ctx, existing.DeepCopy(), client.PropagationPolicy(metav1.DeletePropagationOrphan)); err != nil && !apierrors.IsNotFound(err) {
			return false, fmt.Errorf("replacing StatefulSet %s: %w", desired.Name, err)
		}
	}
	s.redisFound.replacing = existing
	return true, nil
}

// serversUseSentinels reports whether the verifier and the issuer Deployments have rolled
// out completely with the Sentinel master name, so no auth-server pod uses the single
// pod's Service any more.
func (r *AuthServiceReconciler) serversUseSentinels(ctx context.Context, as *authv1alpha1.AuthService) bool {
	for _, name := range []string{as.ServerName(), as.IssuerName()} {
		d := &appsv1.Deployment{}
		if err := r.Client.Get(ctx, client.ObjectKey{Namespace: as.Namespace, Name: name}, d); err != nil {
			return false
		}
		if !rolledOutWithSentinels(d, sentinelMasterName(as)) {
			return false
		}
	}
	return true
}

// rolledOutWithSentinels reports whether every pod of d runs its current template and
// that template names the Sentinel master.
func rolledOutWithSentinels(d *appsv1.Deployment, masterName string) bool {
	onSentinels := false
	for _, c := range d.Spec.Template.Spec.Containers {
		for _, e := range c.Env {
			if e.Name == "AUTHSERVER_REDIS_MASTER_NAME" && e.Value == masterName {
				onSentinels = true
			}
		}
	}
	st := d.Status
	want := ptr.Deref(d.Spec.Replicas, 1)
	return onSentinels && st.ObservedGeneration >= d.Generation && st.UpdatedReplicas >= want && st.Replicas == st.UpdatedReplicas
}

// sentinelsMayStart reports whether the Sentinels' StatefulSet may be written: it exists
// already, or the Redis StatefulSet has an available pod.
func (r *AuthServiceReconciler) sentinelsMayStart(ctx context.Context, redisSet, sentinels *appsv1.StatefulSet) (bool, error) {
	for _, sts := range []*appsv1.StatefulSet{sentinels, redisSet} {
		existing := &appsv1.StatefulSet{}
		err := r.Client.Get(ctx, client.ObjectKeyFromObject(sts), existing)
		switch {
		case apierrors.IsNotFound(err):
			continue
		case err != nil:
			return false, fmt.Errorf("reading StatefulSet %s: %w", sts.Name, err)
		case sts == sentinels || existing.Status.AvailableReplicas >= 1:
			return true, nil
		}
	}
	return false, nil
}

// podZeroIsReplicated reports whether the replicated StatefulSet may run all its pods: it
// does already, or its pod 0 runs the replicated template and is ready. Until then it
// runs pod 0 alone, so that a pod 0 adopted from the single-pod StatefulSet (whose DNS
// name is under the other Service) is rolled first and every replica starts behind a
// primary it can resolve, holding the data of the single pod.
func (r *AuthServiceReconciler) podZeroIsReplicated(ctx context.Context, desired *appsv1.StatefulSet) (bool, error) {
	existing := &appsv1.StatefulSet{}
	if err := r.Client.Get(ctx, client.ObjectKeyFromObject(desired), existing); err != nil {
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return false, fmt.Errorf("reading StatefulSet %s: %w", desired.Name, err)
	}
	if ptr.Deref(existing.Spec.Replicas, 1) > 1 {
		return true, nil
	}
	st := existing.Status
	return existing.Spec.ServiceName == desired.Spec.ServiceName && st.ObservedGeneration >= existing.Generation &&
		st.UpdatedReplicas >= 1 && st.ReadyReplicas >= 1 && st.UpdateRevision == st.CurrentRevision, nil
}
