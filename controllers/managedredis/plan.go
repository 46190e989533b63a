package managedredis

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
	"github.com/hiringo/auth-operator/internal/serverenv"
)

// Observed is what the cluster holds of an AuthService's managed Redis and of the auth
// servers that use it, as Read found it at the start of a pass.
type Observed struct {
	// Redis is the StatefulSet NAME-redis, Sentinels NAME-redis-sentinel; nil when missing.
	Redis, Sentinels *appsv1.StatefulSet
	// RedisDeployment is the Deployment NAME-redis of one pod without persistence; nil when
	// missing.
	RedisDeployment *appsv1.Deployment
	// Servers are the verifier's and the issuer's Deployments, those that could be read.
	Servers []*appsv1.Deployment
}

// Read reads what Desired decides from, through c (the manager's cache).
func Read(ctx context.Context, c client.Reader, as *authv1alpha1.AuthService) (Observed, error) {
	var o Observed
	for _, sts := range []struct {
		name string
		into **appsv1.StatefulSet
	}{{as.RedisName(), &o.Redis}, {as.RedisSentinelName(), &o.Sentinels}} {
		existing := &appsv1.StatefulSet{}
		switch err := c.Get(ctx, client.ObjectKey{Namespace: as.Namespace, Name: sts.name}, existing); {
		case err == nil:
			*sts.into = existing
		case !apierrors.IsNotFound(err):
			return Observed{}, fmt.Errorf("reading StatefulSet %s: %w", sts.name, err)
		}
	}
	d := &appsv1.Deployment{}
	switch err := c.Get(ctx, client.ObjectKey{Namespace: as.Namespace, Name: as.RedisName()}, d); {
	case err == nil:
		o.RedisDeployment = d
	case !apierrors.IsNotFound(err):
		return Observed{}, fmt.Errorf("reading Deployment %s: %w", as.RedisName(), err)
	}
	for _, name := range []string{as.ServerName(), as.IssuerName()} {
		d := &appsv1.Deployment{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: as.Namespace, Name: name}, d); err == nil {
			o.Servers = append(o.Servers, d)
		}
	}
	return o, nil
}

// Plan is what one pass does to the managed Redis, in order: delete Remove (the objects of
// the other topology, where the AuthService controls them); then, when Replace is set,
// delete it with its pods orphaned (unless its deletion has started) and stop there; else
// apply Apply, delete RemoveAfter, and read Workload and Sentinels back.
type Plan struct {
	Remove []client.Object
	// Replace is the StatefulSet NAME-redis, as read, when it is governed by the other
	// topology's Service, which the API server does not let change. Its successor is
	// written once the garbage collector has released its pods (the deletion is watched):
	// the volumes stay, as a StatefulSet's claims outlive it, and the new StatefulSet adopts
	// the pods and rolls them, so no pod stops before its successor's peers are up.
	Replace     *appsv1.StatefulSet
	Apply       []client.Object
	RemoveAfter []client.Object
	// Workload is the Redis StatefulSet or Deployment applied; Sentinels is the Sentinels'
	// StatefulSet of a replicated Redis, whether or not it was applied yet.
	Workload  client.Object
	Sentinels *appsv1.StatefulSet
	// ClaimKept says the spec asks for a volume claim template the StatefulSet cannot take.
	ClaimKept bool
	// Endpoint is how the auth servers reach Redis once Apply is written.
	Endpoint Endpoint
}

// Endpoint is how the auth servers reach the managed Redis, and as whom.
type Endpoint struct {
	Addresses []string
	// MasterName is the Sentinel master name; "" for the one pod, reached directly.
	MasterName string
	// MinReplicasAcked is how many replicas acknowledge a logout.
	MinReplicasAcked int32
	// Login is the auth servers' user at Redis and at the Sentinels, and the key of its
	// password in the managed Redis Secret.
	Login Login
}

// Desired plans a pass of the managed Redis of as, from what the cluster holds (observed),
// the version of its Secret (confVersion, which rolls the pods) and the auth-server image
// (the replicated Redis's topology step).
//
// Replicated, moving from one pod keeps its data: the StatefulSet NAME-redis is replaced
// with its pods orphaned, so pod 0 keeps its volume data-NAME-redis-0 and serves until the
// new StatefulSet has started the replicas, which copy it; then pod 0 is rolled and rejoins
// behind whichever primary the Sentinels chose. The single pod's Service NAME-redis goes
// once every auth server connects through the Sentinels: it would spread clients over
// replicas. Back to one pod, what only the replicated Redis has goes first.
func Desired(as *authv1alpha1.AuthService, observed Observed, confVersion, image string) Plan {
	name := metav1.ObjectMeta{Name: as.RedisName()}
	if Replicated(as) {
		return replicatedPlan(as, observed, confVersion, image)
	}
	p := Plan{Remove: Objects(as)[4:], Endpoint: Endpoint{Addresses: []string{ServiceAddress(as)}, Login: singleLogin(as, observed)}}
	template := podTemplate(as, confVersion)
	if !*Spec(as).Persistence.Enabled {
		p.Remove = append(p.Remove, &appsv1.StatefulSet{ObjectMeta: name})
		p.Workload = deployment(as, template)
	} else {
		p.Remove = append(p.Remove, &appsv1.Deployment{ObjectMeta: name})
		sts := statefulSet(as, template)
		if replaces(as, observed.Redis, sts) {
			p.Replace = observed.Redis
			return p
		}
		p.Workload, p.ClaimKept = keepVolumeClaimTemplate(observed.Redis, sts)
	}
	p.Apply = []client.Object{p.Workload, service(as), networkPolicy(as)}
	return p
}

func replicatedPlan(as *authv1alpha1.AuthService, observed Observed, confVersion, image string) Plan {
	h := HA(as)
	p := Plan{Remove: []client.Object{&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: as.RedisName()}}}}
	redisSet := replicatedStatefulSet(as, h, confVersion, image)
	if replaces(as, observed.Redis, redisSet) {
		p.Replace = observed.Redis
		return p
	}
	redisSet, p.ClaimKept = keepVolumeClaimTemplate(observed.Redis, redisSet)
	if !podZeroIsReplicated(observed.Redis, redisSet) {
		redisSet.Spec.Replicas = ptr.To[int32](1)
	}
	p.Workload, p.Sentinels = redisSet, sentinelStatefulSet(as, h, confVersion, image)
	p.Apply = []client.Object{
		headlessService(as), redisSet, sentinelService(as), replicatedNetworkPolicy(as),
		podDisruptionBudget(as, as.RedisName(), appRedis), podDisruptionBudget(as, as.RedisSentinelName(), appSentinel),
	}
	// The Sentinels start once a Redis pod is available: a Sentinel monitors a primary by
	// name, and pod 0 has none before it exists. Once they run, they stay.
	if (observed.Sentinels != nil || (observed.Redis != nil && observed.Redis.Status.AvailableReplicas >= 1)) && !sentinelsAwaitACL(observed) {
		p.Apply = append(p.Apply, p.Sentinels)
	}
	p.Endpoint = Endpoint{Addresses: []string{SentinelAddress(as)}, MasterName: MasterName(as), MinReplicasAcked: h.MinReplicasAcked, Login: replicatedLogin(as, observed)}
	// The single pod's Service stays until every auth server connects through the
	// Sentinels: the ones still rolling keep reaching pod 0 through it meanwhile.
	onSentinels := len(observed.Servers) == 2
	for _, d := range observed.Servers {
		onSentinels = onSentinels && rolledOutWithSentinels(d, MasterName(as))
	}
	if onSentinels {
		p.RemoveAfter = []client.Object{&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: as.RedisName()}}}
	}
	return p
}

// Objects are the managed Redis's objects but its Secret, to delete after a switch to an
// external Redis: first those of the one pod, then those only the replicated Redis has.
func Objects(as *authv1alpha1.AuthService) []client.Object {
	name, sentinels := metav1.ObjectMeta{Name: as.RedisName()}, metav1.ObjectMeta{Name: as.RedisSentinelName()}
	return []client.Object{
		&appsv1.StatefulSet{ObjectMeta: name}, &appsv1.Deployment{ObjectMeta: name},
		&corev1.Service{ObjectMeta: name}, &networkingv1.NetworkPolicy{ObjectMeta: name},
		&appsv1.StatefulSet{ObjectMeta: sentinels}, &corev1.Service{ObjectMeta: sentinels},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: as.RedisHeadlessName()}},
		&policyv1.PodDisruptionBudget{ObjectMeta: name}, &policyv1.PodDisruptionBudget{ObjectMeta: sentinels},
	}
}

// replaces reports whether existing, the StatefulSet named like desired, must be replaced:
// it is this AuthService's and governed by another Service (one pod: NAME-redis;
// replicated: NAME-redis-headless), or its replacement has started. One that is not this
// AuthService's is left to the apply, which refuses it.
func replaces(as *authv1alpha1.AuthService, existing, desired *appsv1.StatefulSet) bool {
	return existing != nil && metav1.IsControlledBy(existing, as) &&
		(!existing.DeletionTimestamp.IsZero() || existing.Spec.ServiceName != desired.Spec.ServiceName)
}

// podZeroIsReplicated reports whether the replicated StatefulSet may run all its pods: it
// does already, or its pod 0 runs the replicated template and is ready. Until then it
// runs pod 0 alone, so that a pod 0 adopted from the single-pod StatefulSet (whose DNS
// name is under the other Service) is rolled first and every replica starts behind a
// primary it can resolve, holding the data of the single pod.
func podZeroIsReplicated(existing, desired *appsv1.StatefulSet) bool {
	if existing == nil {
		return false
	}
	if ptr.Deref(existing.Spec.Replicas, 1) > 1 {
		return true
	}
	st := existing.Status
	return existing.Spec.ServiceName == desired.Spec.ServiceName && st.ObservedGeneration >= existing.Generation &&
		st.UpdatedReplicas >= 1 && st.ReadyReplicas >= 1 && st.UpdateRevision == st.CurrentRevision
}

// rolledOutWithSentinels reports whether every pod of d runs its current template and
// that template names the Sentinel master.
func rolledOutWithSentinels(d *appsv1.Deployment, masterName string) bool {
	onSentinels := false
	for _, c := range d.Spec.Template.Spec.Containers {
		for _, e := range c.Env {
			if e.Name == serverenv.RedisMasterName && e.Value == masterName {
				onSentinels = true
			}
		}
	}
	st := d.Status
	want := ptr.Deref(d.Spec.Replicas, 1)
	return onSentinels && st.ObservedGeneration >= d.Generation && st.UpdatedReplicas >= want && st.Replicas == st.UpdatedReplicas
}
