package managedredis

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
)

// describe names objects as Kind/name, in order.
func describe(objs []client.Object) []string {
	var out []string
	for _, obj := range objs {
		kind := ""
		switch obj.(type) {
		case *appsv1.StatefulSet:
			kind = "StatefulSet"
		case *appsv1.Deployment:
			kind = "Deployment"
		case *corev1.Service:
			kind = "Service"
		case *networkingv1.NetworkPolicy:
			kind = "NetworkPolicy"
		case *policyv1.PodDisruptionBudget:
			kind = "PodDisruptionBudget"
		default:
			kind = fmt.Sprintf("%T", obj)
		}
		out = append(out, kind+"/"+obj.GetName())
	}
	return out
}

// existingSet is a StatefulSet NAME-redis as the cluster holds it: controlled by the
// AuthService auth (uid-1) unless foreign, governed by service, with ready pods.
func existingSet(service string, replicas, ready int32, foreign bool) *appsv1.StatefulSet {
	s := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "auth-redis", Namespace: "prod", Generation: 1},
		Spec: appsv1.StatefulSetSpec{ServiceName: service, Replicas: ptr.To(replicas), VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{
			Spec: corev1.PersistentVolumeClaimSpec{Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}},
		}}},
		Status: appsv1.StatefulSetStatus{ObservedGeneration: 1, Replicas: replicas, UpdatedReplicas: replicas, ReadyReplicas: ready, AvailableReplicas: ready,
			CurrentRevision: "r1", UpdateRevision: "r1"},
	}
	if !foreign {
		s.OwnerReferences = []metav1.OwnerReference{{APIVersion: "auth.hiringo.tech/v1alpha1", Kind: "AuthService", Name: "auth", UID: "uid-1", Controller: ptr.To(true)}}
	}
	return s
}

// withACL is s, its template defining the ACL users.
func withACL(s *appsv1.StatefulSet) *appsv1.StatefulSet {
	s = s.DeepCopy()
	s.Spec.Template.Annotations = map[string]string{ACLAnnotation: "true"}
	return s
}

// rolling is s with a rollout under way.
func rolling(s *appsv1.StatefulSet) *appsv1.StatefulSet {
	s = s.DeepCopy()
	s.Status.UpdateRevision = "r2"
	return s
}

// onACL is d, its pods logging in to Redis as the auth servers' ACL user.
func onACL(d *appsv1.Deployment) *appsv1.Deployment {
	d = d.DeepCopy()
	c := &d.Spec.Template.Spec.Containers[0]
	c.Env = append(c.Env, corev1.EnvVar{Name: "AUTHSERVER_REDIS_USERNAME", Value: "authserver"})
	return d
}

// server is the verifier's or issuer's Deployment, rolled out on the Sentinels or not.
func server(name string, onSentinels bool) *appsv1.Deployment {
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](2)},
		Status: appsv1.DeploymentStatus{Replicas: 2, UpdatedReplicas: 2}}
	if onSentinels {
		d.Spec.Template.Spec.Containers = []corev1.Container{{Env: []corev1.EnvVar{{Name: "AUTHSERVER_REDIS_MASTER_NAME", Value: "auth"}}}}
	}
	return d
}

func TestDesired(t *testing.T) {
	onePod := func(as *authv1alpha1.AuthService) {}
	ephemeral := func(as *authv1alpha1.AuthService) { as.Spec.Redis.Managed.Persistence.Enabled = ptr.To(false) }
	bigger := func(as *authv1alpha1.AuthService) {
		as.Spec.Redis.Managed.Persistence.Size = ptr.To(resource.MustParse("5Gi"))
	}
	replicated := func(as *authv1alpha1.AuthService) {
		as.Spec.Redis.Managed.HighAvailability = &authv1alpha1.RedisHighAvailabilitySpec{MinReplicasAcked: ptr.To[int32](2)}
	}
	deleting := existingSet("auth-redis", 1, 1, false)
	deleting.DeletionTimestamp = &metav1.Time{}
	replicatedOnly := []string{"StatefulSet/auth-redis-sentinel", "Service/auth-redis-sentinel", "Service/auth-redis-headless",
		"PodDisruptionBudget/auth-redis", "PodDisruptionBudget/auth-redis-sentinel"}
	replicatedApply := []string{"Service/auth-redis-headless", "StatefulSet/auth-redis", "Service/auth-redis-sentinel", "NetworkPolicy/auth-redis",
		"PodDisruptionBudget/auth-redis", "PodDisruptionBudget/auth-redis-sentinel"}
	oneEndpoint := Endpoint{Addresses: []string{"auth-redis.prod.svc:6379"}, Login: adminLogin}
	sentinelEndpoint := Endpoint{Addresses: []string{"auth-redis-sentinel.prod.svc:26379"}, MasterName: "auth", MinReplicasAcked: 2, Login: adminLogin}
	oneACLEndpoint, sentinelACLEndpoint := oneEndpoint, sentinelEndpoint
	oneACLEndpoint.Login, sentinelACLEndpoint.Login = authServerLogin, authServerLogin
	sentinelSet := func(acl bool) *appsv1.StatefulSet {
		s := existingSet("auth-redis-headless", 3, 3, false)
		s.Name = "auth-redis-sentinel"
		if acl {
			return withACL(s)
		}
		return s
	}
	ephemeralPod := func(acl bool) *appsv1.Deployment {
		d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "auth-redis", Generation: 2}, Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](1)},
			Status: appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 1, UpdatedReplicas: 1, ReadyReplicas: 1, Conditions: []appsv1.DeploymentCondition{
				{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue, Reason: "NewReplicaSetAvailable"},
			}}}
		if acl {
			d.Spec.Template.Annotations = map[string]string{ACLAnnotation: "true"}
		}
		return d
	}
	for _, tc := range []struct {
		name     string
		mutate   func(*authv1alpha1.AuthService)
		observed Observed
		// remove, apply and removeAfter are the plan's objects as Kind/name; replace is the
		// replaced StatefulSet, nil for none.
		remove, apply, removeAfter []string
		replace                    *appsv1.StatefulSet
		// replicas is the Redis workload's, governedBy its Service ("" for a Deployment).
		replicas   int32
		governedBy string
		claimKept  bool
		endpoint   Endpoint
	}{
		{name: "one pod, first pass: what only the replicated Redis has goes, then the StatefulSet and its Service and policy",
			mutate: onePod, remove: append(slices.Clone(replicatedOnly), "Deployment/auth-redis"),
			apply: []string{"StatefulSet/auth-redis", "Service/auth-redis", "NetworkPolicy/auth-redis"}, replicas: 1, governedBy: "auth-redis", endpoint: oneEndpoint},
		{name: "one pod without persistence: a Deployment in place of the StatefulSet",
			mutate: ephemeral, remove: append(slices.Clone(replicatedOnly), "StatefulSet/auth-redis"),
			apply: []string{"Deployment/auth-redis", "Service/auth-redis", "NetworkPolicy/auth-redis"}, replicas: 1, endpoint: oneEndpoint},
		{name: "one pod after replicated Redis: the StatefulSet governed by the headless Service is replaced first",
			mutate: onePod, observed: Observed{Redis: existingSet("auth-redis-headless", 3, 3, false)},
			remove: append(slices.Clone(replicatedOnly), "Deployment/auth-redis"), replace: existingSet("auth-redis-headless", 3, 3, false), endpoint: oneEndpoint},
		{name: "a replacement under way waits for the garbage collector",
			mutate: replicated, observed: Observed{Redis: deleting}, remove: []string{"Deployment/auth-redis"}, replace: deleting},
		{name: "a foreign StatefulSet is left to the apply, which refuses it",
			mutate: onePod, observed: Observed{Redis: existingSet("auth-redis-headless", 3, 3, true)},
			remove: append(slices.Clone(replicatedOnly), "Deployment/auth-redis"),
			apply:  []string{"StatefulSet/auth-redis", "Service/auth-redis", "NetworkPolicy/auth-redis"}, replicas: 1, governedBy: "auth-redis", endpoint: oneEndpoint},
		{name: "a bigger volume asked for keeps the claim template the StatefulSet has",
			mutate: bigger, observed: Observed{Redis: existingSet("auth-redis", 1, 1, false)},
			remove: append(slices.Clone(replicatedOnly), "Deployment/auth-redis"),
			apply:  []string{"StatefulSet/auth-redis", "Service/auth-redis", "NetworkPolicy/auth-redis"}, replicas: 1, governedBy: "auth-redis", claimKept: true, endpoint: oneEndpoint},
		{name: "replicated, first pass: pod 0 alone and no Sentinels before a Redis pod is available",
			mutate: replicated, remove: []string{"Deployment/auth-redis"}, apply: replicatedApply,
			replicas: 1, governedBy: "auth-redis-headless", endpoint: sentinelEndpoint},
		{name: "replicated after one pod: the StatefulSet governed by the pod's Service is replaced first",
			mutate: replicated, observed: Observed{Redis: existingSet("auth-redis", 1, 1, false)},
			remove: []string{"Deployment/auth-redis"}, replace: existingSet("auth-redis", 1, 1, false)},
		{name: "replicated, pod 0 adopted and not yet rolled: it runs alone, and the Sentinels start behind it",
			mutate: replicated, observed: Observed{Redis: func() *appsv1.StatefulSet {
				s := existingSet("auth-redis-headless", 1, 1, false)
				s.Status.UpdateRevision = "r2"
				return s
			}()},
			remove: []string{"Deployment/auth-redis"}, apply: append(slices.Clone(replicatedApply), "StatefulSet/auth-redis-sentinel"),
			replicas: 1, governedBy: "auth-redis-headless", endpoint: sentinelEndpoint},
		{name: "replicated, pod 0 rolled and ready: every pod, and the Sentinels",
			mutate: replicated, observed: Observed{Redis: existingSet("auth-redis-headless", 1, 1, false)},
			remove: []string{"Deployment/auth-redis"}, apply: append(slices.Clone(replicatedApply), "StatefulSet/auth-redis-sentinel"),
			replicas: 3, governedBy: "auth-redis-headless", endpoint: sentinelEndpoint},
		{name: "replicated, running Sentinels stay though no Redis pod is available",
			mutate: replicated, observed: Observed{Redis: existingSet("auth-redis-headless", 3, 0, false), Sentinels: withACL(&appsv1.StatefulSet{})},
			remove: []string{"Deployment/auth-redis"}, apply: append(slices.Clone(replicatedApply), "StatefulSet/auth-redis-sentinel"),
			replicas: 3, governedBy: "auth-redis-headless", endpoint: sentinelEndpoint},
		{name: "replicated, one auth server still on the pod's Service: the Service stays",
			mutate: replicated, observed: Observed{Redis: existingSet("auth-redis-headless", 3, 3, false), Sentinels: withACL(&appsv1.StatefulSet{}),
				Servers: []*appsv1.Deployment{server("auth-authserver", true), server("auth-issuer", false)}},
			remove: []string{"Deployment/auth-redis"}, apply: append(slices.Clone(replicatedApply), "StatefulSet/auth-redis-sentinel"),
			replicas: 3, governedBy: "auth-redis-headless", endpoint: sentinelEndpoint},
		{name: "replicated, every auth server on the Sentinels: the pod's Service goes",
			mutate: replicated, observed: Observed{Redis: existingSet("auth-redis-headless", 3, 3, false), Sentinels: withACL(&appsv1.StatefulSet{}),
				Servers: []*appsv1.Deployment{server("auth-authserver", true), server("auth-issuer", true)}},
			remove: []string{"Deployment/auth-redis"}, apply: append(slices.Clone(replicatedApply), "StatefulSet/auth-redis-sentinel"),
			removeAfter: []string{"Service/auth-redis"}, replicas: 3, governedBy: "auth-redis-headless", endpoint: sentinelEndpoint},
		{name: "upgrade, Redis pods without the ACL users: the Sentinels keep their template, the auth servers log in as the administrator",
			mutate: replicated, observed: Observed{Redis: existingSet("auth-redis-headless", 3, 3, false), Sentinels: sentinelSet(false)},
			remove: []string{"Deployment/auth-redis"}, apply: replicatedApply,
			replicas: 3, governedBy: "auth-redis-headless", endpoint: sentinelEndpoint},
		{name: "upgrade, every Redis pod defines the ACL users: the Sentinels roll, the auth servers wait for them",
			mutate: replicated, observed: Observed{Redis: withACL(existingSet("auth-redis-headless", 3, 3, false)), Sentinels: sentinelSet(false)},
			remove: []string{"Deployment/auth-redis"}, apply: append(slices.Clone(replicatedApply), "StatefulSet/auth-redis-sentinel"),
			replicas: 3, governedBy: "auth-redis-headless", endpoint: sentinelEndpoint},
		{name: "replicated, every Redis and Sentinel pod defines the ACL users: the auth servers log in as theirs",
			mutate: replicated, observed: Observed{Redis: withACL(existingSet("auth-redis-headless", 3, 3, false)), Sentinels: sentinelSet(true)},
			remove: []string{"Deployment/auth-redis"}, apply: append(slices.Clone(replicatedApply), "StatefulSet/auth-redis-sentinel"),
			replicas: 3, governedBy: "auth-redis-headless", endpoint: sentinelACLEndpoint},
		{name: "replicated, the Redis pods still rolling to the ACL users: the auth servers keep the administrator",
			mutate: replicated, observed: Observed{Redis: rolling(withACL(existingSet("auth-redis-headless", 3, 3, false))), Sentinels: sentinelSet(true)},
			remove: []string{"Deployment/auth-redis"}, apply: append(slices.Clone(replicatedApply), "StatefulSet/auth-redis-sentinel"),
			replicas: 3, governedBy: "auth-redis-headless", endpoint: sentinelEndpoint},
		{name: "replicated, rolled out with a pod not ready (restarting): the auth servers keep their user",
			mutate: replicated, observed: Observed{Redis: withACL(existingSet("auth-redis-headless", 3, 1, false)), Sentinels: sentinelSet(true)},
			remove: []string{"Deployment/auth-redis"}, apply: append(slices.Clone(replicatedApply), "StatefulSet/auth-redis-sentinel"),
			replicas: 3, governedBy: "auth-redis-headless", endpoint: sentinelACLEndpoint},
		{name: "replicated, auth servers on their user while a new template rolls: they stay on it",
			mutate: replicated, observed: Observed{Redis: rolling(withACL(existingSet("auth-redis-headless", 3, 3, false))), Sentinels: sentinelSet(true),
				Servers: []*appsv1.Deployment{onACL(server("auth-authserver", true))}},
			remove: []string{"Deployment/auth-redis"}, apply: append(slices.Clone(replicatedApply), "StatefulSet/auth-redis-sentinel"),
			replicas: 3, governedBy: "auth-redis-headless", endpoint: sentinelACLEndpoint},
		{name: "one pod defining the ACL users: the auth servers log in as theirs",
			mutate: onePod, observed: Observed{Redis: withACL(existingSet("auth-redis", 1, 1, false))},
			remove: append(slices.Clone(replicatedOnly), "Deployment/auth-redis"),
			apply:  []string{"StatefulSet/auth-redis", "Service/auth-redis", "NetworkPolicy/auth-redis"}, replicas: 1, governedBy: "auth-redis", endpoint: oneACLEndpoint},
		{name: "one pod without persistence, rolled with the ACL users: the auth servers log in as theirs",
			mutate: ephemeral, observed: Observed{RedisDeployment: ephemeralPod(true)}, remove: append(slices.Clone(replicatedOnly), "StatefulSet/auth-redis"),
			apply: []string{"Deployment/auth-redis", "Service/auth-redis", "NetworkPolicy/auth-redis"}, replicas: 1, endpoint: oneACLEndpoint},
		{name: "one pod without persistence, not yet rolled: the administrator",
			mutate: ephemeral, observed: Observed{RedisDeployment: ephemeralPod(false)}, remove: append(slices.Clone(replicatedOnly), "StatefulSet/auth-redis"),
			apply: []string{"Deployment/auth-redis", "Service/auth-redis", "NetworkPolicy/auth-redis"}, replicas: 1, endpoint: oneEndpoint},
	} {
		t.Run(tc.name, func(t *testing.T) {
			as := testAuthService()
			as.UID = "uid-1"
			tc.mutate(as)
			p := Desired(as, tc.observed, "v1", "authserver:test")
			for what, got := range map[string][]string{"Remove": describe(p.Remove), "Apply": describe(p.Apply), "RemoveAfter": describe(p.RemoveAfter)} {
				want := map[string][]string{"Remove": tc.remove, "Apply": tc.apply, "RemoveAfter": tc.removeAfter}[what]
				if !slices.Equal(got, want) {
					t.Errorf("%s = %v, want %v", what, got, want)
				}
			}
			if (p.Replace == nil) != (tc.replace == nil) || (p.Replace != nil && p.Replace.Spec.ServiceName != tc.replace.Spec.ServiceName) {
				t.Errorf("Replace = %v, want %v", p.Replace, tc.replace)
			}
			if p.ClaimKept != tc.claimKept || !equalEndpoints(p.Endpoint, tc.endpoint) {
				t.Errorf("ClaimKept %v, Endpoint %+v; want %v, %+v", p.ClaimKept, p.Endpoint, tc.claimKept, tc.endpoint)
			}
			switch w := p.Workload.(type) {
			case nil:
				if tc.apply != nil {
					t.Error("no workload to read back")
				}
			case *appsv1.StatefulSet:
				size := w.Spec.VolumeClaimTemplates[0].Spec.Resources.Requests[corev1.ResourceStorage]
				if ptr.Deref(w.Spec.Replicas, 0) != tc.replicas || w.Spec.ServiceName != tc.governedBy || (tc.claimKept && size.String() != "1Gi") {
					t.Errorf("StatefulSet with %d pods governed by %s, claim %s; want %d by %s", ptr.Deref(w.Spec.Replicas, 0), w.Spec.ServiceName, size.String(), tc.replicas, tc.governedBy)
				}
			case *appsv1.Deployment:
				if tc.governedBy != "" || ptr.Deref(w.Spec.Replicas, 0) != tc.replicas {
					t.Errorf("a Deployment with %d pods, want a StatefulSet governed by %s", ptr.Deref(w.Spec.Replicas, 0), tc.governedBy)
				}
			}
			if (p.Sentinels != nil) != (tc.endpoint.MasterName != "") {
				t.Errorf("Sentinels to read back: %v, want them with a replicated Redis only", p.Sentinels)
			}
		})
	}
}

func equalEndpoints(a, b Endpoint) bool {
	return slices.Equal(a.Addresses, b.Addresses) && a.MasterName == b.MasterName && a.MinReplicasAcked == b.MinReplicasAcked && a.Login == b.Login
}

func TestObjects_EveryObjectButTheSecret(t *testing.T) {
	got := describe(Objects(testAuthService()))
	want := []string{"StatefulSet/auth-redis", "Deployment/auth-redis", "Service/auth-redis", "NetworkPolicy/auth-redis",
		"StatefulSet/auth-redis-sentinel", "Service/auth-redis-sentinel", "Service/auth-redis-headless",
		"PodDisruptionBudget/auth-redis", "PodDisruptionBudget/auth-redis-sentinel"}
	if !slices.Equal(got, want) {
		t.Errorf("Objects = %v, want %v", got, want)
	}
}

func TestRead(t *testing.T) {
	as := testAuthService()
	redis := existingSet("auth-redis", 1, 1, false)
	verifier := server("auth-authserver", false)
	verifier.Namespace = "prod"
	objs := []client.Object{redis, verifier}

	c := fake.NewClientBuilder().WithScheme(clientgoscheme.Scheme).WithObjects(objs...).Build()
	o, err := Read(context.Background(), c, as)
	if err != nil {
		t.Fatal(err)
	}
	if o.Redis == nil || o.Redis.Name != "auth-redis" || o.Sentinels != nil || len(o.Servers) != 1 || o.Servers[0].Name != "auth-authserver" {
		t.Errorf("Observed = Redis %v, Sentinels %v, %d servers; want the Redis StatefulSet, no Sentinels and the verifier", o.Redis, o.Sentinels, len(o.Servers))
	}

	failing := fake.NewClientBuilder().WithScheme(clientgoscheme.Scheme).WithObjects(objs...).WithInterceptorFuncs(interceptor.Funcs{
		Get: func(ctx context.Context, c client.WithWatch, key types.NamespacedName, obj client.Object, opts ...client.GetOption) error {
			if key.Name == "auth-redis-sentinel" || key.Name == "auth-issuer" {
				return errors.New("the cache is not synced")
			}
			return c.Get(ctx, key, obj, opts...)
		},
	}).Build()
	if _, err := Read(context.Background(), failing, as); err == nil || !strings.Contains(err.Error(), "reading StatefulSet auth-redis-sentinel: the cache is not synced") {
		t.Errorf("Read = %v, want the Sentinels' read error", err)
	}
}
