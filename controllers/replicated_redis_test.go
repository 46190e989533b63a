package controllers

import (
	"context"
	"maps"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
	"github.com/hiringo/auth-operator/controllers/internal/objects"
	"github.com/hiringo/auth-operator/controllers/managedredis"
	"github.com/hiringo/auth-operator/internal/testutil/poll"
)

// markStatefulSetReplicasAvailable writes the status the StatefulSet controller would
// once n pods are available (envtest runs no controllers).
func markStatefulSetReplicasAvailable(t *testing.T, ns, name string, n int32) {
	t.Helper()
	s := &appsv1.StatefulSet{}
	poll.Until(t, waitTimeout, "marking StatefulSet "+name+" available", func() error {
		if err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, s); err != nil {
			return err
		}
		s.Status = appsv1.StatefulSetStatus{ObservedGeneration: s.Generation, Replicas: n, ReadyReplicas: n, AvailableReplicas: n, CurrentReplicas: n, UpdatedReplicas: n}
		return k8sClient.Status().Update(context.Background(), s)
	})
}

// releaseOrphans does what the garbage collector does for a deletion that orphans the
// dependents (envtest runs none): it removes the orphan finalizer, and the object goes.
func releaseOrphans(t *testing.T, ns, name string) {
	t.Helper()
	sts := get(t, ns, name, &appsv1.StatefulSet{})
	if sts.DeletionTimestamp.IsZero() || !slices.Contains(sts.Finalizers, metav1.FinalizerOrphanDependents) {
		t.Fatalf("StatefulSet %s is not being deleted with its pods orphaned: deletion %v, finalizers %v", name, sts.DeletionTimestamp, sts.Finalizers)
	}
	update(t, sts, func(s *appsv1.StatefulSet) { s.Finalizers = nil })
	poll.UntilTrue(t, waitTimeout, "StatefulSet "+name+" gone", func() bool { return isNotFound(t, ns, name, &appsv1.StatefulSet{}) })
}

func TestReplicatedRedis_CreatesEveryObjectWiredTogether(t *testing.T) {
	ns := newNamespace(t)
	r := newDirectReconciler(t, clocktesting.NewFakePassiveClock(t0), nil)
	as := createAuthService(t, ns, "auth", withHA)
	reconcileOnce(t, r, ns, "auth")
	as = get(t, ns, "auth", as)
	if !isNotFound(t, ns, "auth-redis-sentinel", &appsv1.StatefulSet{}) {
		t.Error("the Sentinels start before any Redis pod is available")
	}
	if c := condition(as, authv1alpha1.RedisReadyCondition); c.Status != metav1.ConditionFalse || !strings.Contains(c.Message, "before the Sentinels start") {
		t.Errorf("RedisReady before the first Redis pod = %s %q", c.Status, c.Message)
	}
	if n := ptr.Deref(get(t, ns, "auth-redis", &appsv1.StatefulSet{}).Spec.Replicas, 0); n != 1 {
		t.Errorf("the replicated Redis starts with %d pods, want pod 0 alone until it is ready", n)
	}
	markStatefulSetReplicasAvailable(t, ns, "auth-redis", 1)
	reconcileOnce(t, r, ns, "auth")

	redis := get(t, ns, "auth-redis", &appsv1.StatefulSet{})
	sentinels := get(t, ns, "auth-redis-sentinel", &appsv1.StatefulSet{})
	if ptr.Deref(redis.Spec.Replicas, 0) != 3 || redis.Spec.ServiceName != "auth-redis-headless" || ptr.Deref(sentinels.Spec.Replicas, 0) != 3 {
		t.Errorf("Redis %d pods governed by %s, %d Sentinels", ptr.Deref(redis.Spec.Replicas, 0), redis.Spec.ServiceName, ptr.Deref(sentinels.Spec.Replicas, 0))
	}
	for _, sts := range []*appsv1.StatefulSet{redis, sentinels} {
		if !metav1.IsControlledBy(sts, as) || sts.Labels[objects.ManagedByLabel] != objects.ManagedByValue {
			t.Errorf("StatefulSet %s is not owned and labelled", sts.Name)
		}
		if init := sts.Spec.Template.Spec.InitContainers; len(init) != 1 || init[0].Image != testImage {
			t.Errorf("StatefulSet %s init containers = %+v, want the topology step of the auth-server image", sts.Name, init)
		}
	}
	headless := get(t, ns, "auth-redis-headless", &corev1.Service{})
	if headless.Spec.ClusterIP != corev1.ClusterIPNone || !headless.Spec.PublishNotReadyAddresses {
		t.Errorf("headless Service = %+v", headless.Spec)
	}
	if s := get(t, ns, "auth-redis-sentinel", &corev1.Service{}); s.Spec.Ports[0].Port != 26379 {
		t.Errorf("Sentinel Service ports = %+v", s.Spec.Ports)
	}
	if !isNotFound(t, ns, "auth-redis", &corev1.Service{}) {
		t.Error("the single pod's Service exists beside the replicated Redis: it would spread clients over replicas")
	}
	np := get(t, ns, "auth-redis", &networkingv1.NetworkPolicy{})
	if np.Spec.PodSelector.MatchLabels[objects.ComponentLabel] != "redis" || len(np.Spec.Ingress[0].From) != 3 {
		t.Errorf("NetworkPolicy = %+v", np.Spec)
	}
	for _, name := range []string{"auth-redis", "auth-redis-sentinel"} {
		if pdb := get(t, ns, name, &policyv1.PodDisruptionBudget{}); pdb.Spec.MaxUnavailable.IntValue() != 1 {
			t.Errorf("PDB %s = %+v", name, pdb.Spec)
		}
	}
	secret := get(t, ns, "auth-redis", &corev1.Secret{})
	for _, sts := range []*appsv1.StatefulSet{redis, sentinels} {
		if sts.Spec.Template.Annotations[managedredis.ConfigChecksumAnnotation] != secretVersion(secret) {
			t.Errorf("StatefulSet %s does not roll with the password Secret", sts.Name)
		}
	}
	for _, name := range []string{"auth-authserver", "auth-issuer"} {
		env := envMap(get(t, ns, name, &appsv1.Deployment{}).Spec.Template.Spec.Containers[0])
		if env["AUTHSERVER_REDIS_MODE"] != "sentinel" || env["AUTHSERVER_REDIS_ADDRS"] != "auth-redis-sentinel."+ns+".svc:26379" ||
			env["AUTHSERVER_REDIS_MASTER_NAME"] != "auth" || env["AUTHSERVER_REDIS_SENTINEL_PASSWORD_FILE"] != sentinelPasswordFile ||
			env["AUTHSERVER_REDIS_MIN_REPLICAS_ACKED"] != "1" {
			t.Errorf("%s env = %v, want Sentinel mode through auth-redis-sentinel with one replica acknowledging", name, env)
		}
	}
	if c := condition(get(t, ns, "auth", as), authv1alpha1.RedisReadyCondition); c.Status != metav1.ConditionFalse || c.Reason != authv1alpha1.ReasonUnavailable {
		t.Errorf("RedisReady with one Redis pod and no Sentinel = %s %s %q", c.Status, c.Reason, c.Message)
	}
	markStatefulSetReplicasAvailable(t, ns, "auth-redis", 2)
	markStatefulSetReplicasAvailable(t, ns, "auth-redis-sentinel", 2)
	reconcileOnce(t, r, ns, "auth")
	if c := condition(get(t, ns, "auth", as), authv1alpha1.RedisReadyCondition); c.Status != metav1.ConditionTrue ||
		!strings.Contains(c.Message, "2 of 3 Redis pods and 2 of 3 Sentinels available") {
		t.Errorf("RedisReady with a primary, a replica and a Sentinel majority = %s %s %q", c.Status, c.Reason, c.Message)
	}

	// Each pod mounts its own credentials: a Redis pod the administrator's password and the
	// auth servers' (its start gate asks the Sentinels as them), a Sentinel pod the
	// Sentinels' own and their ACL users, never the administrator's.
	for sts, want := range map[*appsv1.StatefulSet][]string{
		redis:     {managedredis.ConfigKey, managedredis.PasswordKey, managedredis.AuthServerPasswordKey},
		sentinels: {managedredis.SentinelPasswordKey, managedredis.SentinelUsersKey},
	} {
		var keys []string
		for _, v := range sts.Spec.Template.Spec.Volumes {
			if v.Name == "config" {
				for _, item := range v.Secret.Items {
					keys = append(keys, item.Key)
				}
			}
		}
		if !slices.Equal(keys, want) {
			t.Errorf("StatefulSet %s mounts the Secret's keys %v, want %v", sts.Name, keys, want)
		}
	}
	if conf := string(secret.Data[managedredis.ConfigKey]); !strings.Contains(conf, "\nuser sentinel on #") {
		t.Errorf("the replicated Redis's redis.conf does not define the Sentinels' user")
	}
	// Every Redis and Sentinel pod up to date: the auth servers log in as their ACL user, at
	// Redis and at the Sentinels.
	markStatefulSetReplicasAvailable(t, ns, "auth-redis", 3)
	markStatefulSetReplicasAvailable(t, ns, "auth-redis-sentinel", 3)
	reconcileOnce(t, r, ns, "auth")
	for _, name := range []string{"auth-authserver", "auth-issuer"} {
		d := get(t, ns, name, &appsv1.Deployment{})
		env := envMap(d.Spec.Template.Spec.Containers[0])
		if env["AUTHSERVER_REDIS_USERNAME"] != "authserver" || env["AUTHSERVER_REDIS_SENTINEL_USERNAME"] != "authserver" {
			t.Errorf("%s env = %v, want the authserver user at Redis and at the Sentinels", name, env)
		}
		for _, v := range d.Spec.Template.Spec.Volumes {
			if v.Secret != nil && v.Secret.SecretName == "auth-redis" && v.Secret.Items[0].Key != managedredis.AuthServerPasswordKey {
				t.Errorf("%s mounts key %q of auth-redis, want only %s", name, v.Secret.Items[0].Key, managedredis.AuthServerPasswordKey)
			}
		}
	}
}

// TestReplicatedRedis_SwitchBothWaysKeepsPodZerosVolume: one pod → replicated → one pod.
// Each switch replaces the StatefulSet (its governing Service cannot change) with its
// pods orphaned and its claim template data kept, so pod 0 is adopted with its volume
// data-auth-redis-0; the auth servers keep the old wiring until the new StatefulSet exists.
// The data side of the switch (replicas copy pod 0; the last pod keeps every entry) is
// Redis's own replication and graceful shutdown.
func TestReplicatedRedis_SwitchBothWaysKeepsPodZerosVolume(t *testing.T) {
	ns := newNamespace(t)
	r := newDirectReconciler(t, clocktesting.NewFakePassiveClock(t0), nil)
	as := createAuthService(t, ns, "auth", nil)
	reconcileOnce(t, r, ns, "auth")
	single := get(t, ns, "auth-redis", &appsv1.StatefulSet{})
	if single.Spec.ServiceName != "auth-redis" {
		t.Fatalf("single pod governed by %s", single.Spec.ServiceName)
	}

	update(t, as, withHA)
	reconcileOnce(t, r, ns, "auth")
	if c := condition(get(t, ns, "auth", as), authv1alpha1.RedisReadyCondition); c.Reason != authv1alpha1.ReasonProgressing || !strings.Contains(c.Message, "pods and volumes are kept") {
		t.Errorf("RedisReady while replacing = %s %q", c.Reason, c.Message)
	}
	if env := serverEnvOf(t, ns, "auth"); env["AUTHSERVER_REDIS_ADDRS"] != "auth-redis."+ns+".svc:6379" {
		t.Errorf("the verifier was rewired before the replicated Redis exists: %v", env)
	}
	releaseOrphans(t, ns, "auth-redis")
	reconcileOnce(t, r, ns, "auth")
	if n := ptr.Deref(get(t, ns, "auth-redis", &appsv1.StatefulSet{}).Spec.Replicas, 0); n != 1 {
		t.Errorf("the new StatefulSet runs %d pods before the adopted pod 0 is rolled, want 1", n)
	}
	markStatefulSetReplicasAvailable(t, ns, "auth-redis", 1)
	reconcileOnce(t, r, ns, "auth")
	replicated := get(t, ns, "auth-redis", &appsv1.StatefulSet{})
	if replicated.Spec.ServiceName != "auth-redis-headless" || ptr.Deref(replicated.Spec.Replicas, 0) != 3 ||
		!maps.Equal(replicated.Spec.Selector.MatchLabels, single.Spec.Selector.MatchLabels) ||
		replicated.Spec.VolumeClaimTemplates[0].Name != "data" {
		t.Errorf("replicated StatefulSet governed by %s, %d pods, selector %v, claim %s: want the single pod's selector and claim so pod 0 is adopted with data-auth-redis-0",
			replicated.Spec.ServiceName, ptr.Deref(replicated.Spec.Replicas, 0), replicated.Spec.Selector.MatchLabels, replicated.Spec.VolumeClaimTemplates[0].Name)
	}
	if isNotFound(t, ns, "auth-redis", &corev1.Service{}) {
		t.Error("the single pod's Service went before the auth servers moved to the Sentinels")
	}
	markDeploymentAvailable(t, ns, "auth-authserver")
	markDeploymentAvailable(t, ns, "auth-issuer")
	reconcileOnce(t, r, ns, "auth")
	if !isNotFound(t, ns, "auth-redis", &corev1.Service{}) {
		t.Error("the single pod's Service stays after every auth server connects through the Sentinels")
	}

	update(t, as, func(as *authv1alpha1.AuthService) { as.Spec.Redis.Managed.HighAvailability = nil })
	reconcileOnce(t, r, ns, "auth")
	for _, obj := range []client.Object{&appsv1.StatefulSet{}, &corev1.Service{}, &policyv1.PodDisruptionBudget{}} {
		if !isNotFound(t, ns, "auth-redis-sentinel", obj) {
			t.Errorf("%T auth-redis-sentinel stays after the switch to one pod", obj)
		}
	}
	if !isNotFound(t, ns, "auth-redis-headless", &corev1.Service{}) || !isNotFound(t, ns, "auth-redis", &policyv1.PodDisruptionBudget{}) {
		t.Error("the headless Service or the Redis PDB stays after the switch to one pod")
	}
	releaseOrphans(t, ns, "auth-redis")
	reconcileOnce(t, r, ns, "auth")
	back := get(t, ns, "auth-redis", &appsv1.StatefulSet{})
	if back.Spec.ServiceName != "auth-redis" || ptr.Deref(back.Spec.Replicas, 0) != 1 || len(back.Spec.Template.Spec.InitContainers) != 0 {
		t.Errorf("back to one pod: governed by %s, %d pods, %d init containers", back.Spec.ServiceName, ptr.Deref(back.Spec.Replicas, 0), len(back.Spec.Template.Spec.InitContainers))
	}
	if isNotFound(t, ns, "auth-redis", &corev1.Service{}) {
		t.Error("the single pod's Service is missing after the switch back")
	}
	if np := get(t, ns, "auth-redis", &networkingv1.NetworkPolicy{}); np.Spec.PodSelector.MatchLabels[objects.NameLabel] != "redis" {
		t.Errorf("NetworkPolicy selects %v after the switch back", np.Spec.PodSelector.MatchLabels)
	}
	if env := serverEnvOf(t, ns, "auth"); env["AUTHSERVER_REDIS_ADDRS"] != "auth-redis."+ns+".svc:6379" || env["AUTHSERVER_REDIS_MODE"] != "" {
		t.Errorf("the verifier after the switch back: %v", env)
	}
}

// TestStoreState_BlacklistIntactFollowsTheIssuersRecord: the operator creates the
// ConfigMap empty, reads what the issuer writes into it, never overwrites that, and
// BlacklistIntact does not change Ready.
func TestStoreState_BlacklistIntactFollowsTheIssuersRecord(t *testing.T) {
	ns := newNamespace(t)
	r := newDirectReconciler(t, clocktesting.NewFakePassiveClock(t0), nil)
	as := createAuthService(t, ns, "auth", nil)
	reconcileOnce(t, r, ns, "auth")
	if c := condition(get(t, ns, "auth", as), authv1alpha1.BlacklistIntactCondition); c.Status != metav1.ConditionUnknown || c.Reason != authv1alpha1.ReasonNotReported {
		t.Errorf("BlacklistIntact before the issuer wrote = %s %s", c.Status, c.Reason)
	}
	cm := get(t, ns, "auth-store-state", &corev1.ConfigMap{})
	lostAt := t0.Add(-1e9 * 60).UTC().Format("2006-01-02T15:04:05Z07:00")
	update(t, cm, func(cm *corev1.ConfigMap) {
		cm.Data = map[string]string{"generation": "g2", "lostAt": lostAt, "previousGeneration": "g1", "notBefore": lostAt}
	})
	res := reconcileOnce(t, r, ns, "auth")
	as = get(t, ns, "auth", as)
	c := condition(as, authv1alpha1.BlacklistIntactCondition)
	if c.Status != metav1.ConditionFalse || c.Reason != authv1alpha1.ReasonStoreDataLost || !strings.Contains(c.Message, "tokens issued before "+lostAt+" are refused until they expire") {
		t.Errorf("BlacklistIntact after a loss = %s %s %q", c.Status, c.Reason, c.Message)
	}
	if res.RequeueAfter > tokenOutlives(as) {
		t.Errorf("RequeueAfter = %s, want at most the time until the cutoff stops mattering (%s)", res.RequeueAfter, tokenOutlives(as))
	}
	if ready := condition(as, authv1alpha1.ReadyCondition); strings.Contains(ready.Message, "BlacklistIntact") {
		t.Errorf("Ready names BlacklistIntact: %q", ready.Message)
	}
	if got := get(t, ns, "auth-store-state", &corev1.ConfigMap{}); got.Data["generation"] != "g2" || got.Data["lostAt"] != lostAt {
		t.Errorf("the operator's pass overwrote the issuer's record: %v", got.Data)
	}
}

// TestExternalRedis_ModeAndSentinelAuth: spec.redis.external.mode becomes --redis-mode and
// the Sentinels' own user and password Secret are passed and mounted; a missing Sentinel
// password Secret is reported like the Redis one, and a new version of it rolls the pods.
func TestExternalRedis_ModeAndSentinelAuth(t *testing.T) {
	ns := newNamespace(t)
	r := newDirectReconciler(t, clocktesting.NewFakePassiveClock(t0), nil)
	createAuthService(t, ns, "auth", func(as *authv1alpha1.AuthService) {
		as.Spec.Redis.External = &authv1alpha1.ExternalRedisSpec{
			Addresses:                 []authv1alpha1.RedisAddress{"sentinel.corp:26379"},
			MasterName:                "blacklist",
			Mode:                      authv1alpha1.RedisModeSentinel,
			SentinelUsername:          "watcher",
			SentinelPasswordSecretRef: &authv1alpha1.SecretKeyReference{Name: "corp-sentinel", Key: "pw"},
		}
	})
	reconcileOnce(t, r, ns, "auth")
	c := condition(get(t, ns, "auth", &authv1alpha1.AuthService{}), authv1alpha1.RedisReadyCondition)
	if c.Reason != authv1alpha1.ReasonRedisSecretUnusable || !strings.Contains(c.Message, "spec.redis.external.sentinelPasswordSecretRef names Secret corp-sentinel") {
		t.Errorf("RedisReady with the Sentinel password Secret missing = %s %q", c.Reason, c.Message)
	}
	secret := createSecret(t, ns, "corp-sentinel", map[string][]byte{"pw": []byte("s3cret")})
	reconcileOnce(t, r, ns, "auth")
	d := get(t, ns, "auth-authserver", &appsv1.Deployment{})
	env := envMap(d.Spec.Template.Spec.Containers[0])
	for k, v := range map[string]string{
		"AUTHSERVER_REDIS_MODE":                   "sentinel",
		"AUTHSERVER_REDIS_SENTINEL_USERNAME":      "watcher",
		"AUTHSERVER_REDIS_SENTINEL_PASSWORD_FILE": "/etc/authserver/redis-sentinel/password",
	} {
		if env[k] != v {
			t.Errorf("%s = %q, want %q", k, env[k], v)
		}
	}
	if _, ok := env["AUTHSERVER_REDIS_PASSWORD_FILE"]; ok {
		t.Error("a Redis password file is passed though the spec names none")
	}
	if !slices.ContainsFunc(d.Spec.Template.Spec.Volumes, func(v corev1.Volume) bool {
		return v.Name == "redis-sentinel-password" && v.Secret != nil && v.Secret.SecretName == "corp-sentinel" && v.Secret.Items[0].Key == "pw"
	}) {
		t.Errorf("volumes = %+v, want corp-sentinel's pw mounted", d.Spec.Template.Spec.Volumes)
	}
	before := d.Spec.Template.Annotations[RedisSentinelPasswordChecksumAnnotation]
	if before != secretVersion(secret) {
		t.Errorf("Sentinel password checksum = %q, want the Secret version's digest", before)
	}
	update(t, secret, func(s *corev1.Secret) { s.Data["pw"] = []byte("n3w") })
	reconcileOnce(t, r, ns, "auth")
	if after := get(t, ns, "auth-authserver", &appsv1.Deployment{}).Spec.Template.Annotations[RedisSentinelPasswordChecksumAnnotation]; after == before {
		t.Error("a new Sentinel password does not roll the auth servers")
	}
}
