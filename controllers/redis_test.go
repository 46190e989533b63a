package controllers

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
	"github.com/hiringo/auth-operator/internal/testutil/podtest"
	"github.com/hiringo/auth-operator/internal/testutil/poll"
)

func TestManagedRedis_WithoutPersistenceIsADeploymentOnEmptyDir(t *testing.T) {
	ns := newNamespace(t)
	startManager(t, ns, clocktesting.NewFakePassiveClock(t0))
	as := createAuthService(t, ns, "auth", func(as *authv1alpha1.AuthService) {
		as.Spec.Redis.Managed = &authv1alpha1.ManagedRedisSpec{
			Persistence: authv1alpha1.RedisPersistenceSpec{Enabled: ptr.To(false)},
			AppendFsync: "everysec",
		}
	})
	var d *appsv1.Deployment
	poll.Until(t, waitTimeout, "Redis Deployment", func() error {
		d = &appsv1.Deployment{}
		if isNotFound(t, ns, "auth-redis", d) {
			return errorf("not yet")
		}
		return nil
	})
	if !isNotFound(t, ns, "auth-redis", &appsv1.StatefulSet{}) {
		t.Error("a StatefulSet exists though persistence is off")
	}
	if d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		t.Errorf("strategy = %s, want Recreate: two Redis pods would split the blacklist", d.Spec.Strategy.Type)
	}
	var data *corev1.Volume
	for i, v := range d.Spec.Template.Spec.Volumes {
		if v.Name == "data" {
			data = &d.Spec.Template.Spec.Volumes[i]
		}
	}
	if data == nil || data.EmptyDir == nil {
		t.Fatalf("data volume = %+v", d.Spec.Template.Spec.Volumes)
	}
	if cmd := strings.Join(d.Spec.Template.Spec.Containers[0].Command, " "); !strings.Contains(cmd, "--appendfsync everysec") {
		t.Errorf("command = %s", cmd)
	}
	podtest.Restricted(t, "redis", d.Spec.Template.Spec, 999)

	// Turning persistence on swaps the Deployment for a StatefulSet.
	update(t, as, func(as *authv1alpha1.AuthService) { as.Spec.Redis.Managed.Persistence.Enabled = ptr.To(true) })
	poll.Until(t, waitTimeout, "StatefulSet replaces Deployment", func() error {
		if isNotFound(t, ns, "auth-redis", &appsv1.StatefulSet{}) || !isNotFound(t, ns, "auth-redis", &appsv1.Deployment{}) {
			return errorf("not yet")
		}
		return nil
	})
	markStatefulSetAvailable(t, ns, "auth-redis")
	waitCondition(t, ns, "auth", authv1alpha1.RedisReadyCondition, metav1.ConditionTrue, authv1alpha1.ReasonReady)
}

func TestExternalRedis_IsWiredFromTheSpec(t *testing.T) {
	ns := newNamespace(t)
	startManager(t, ns, clocktesting.NewFakePassiveClock(t0))
	as := createAuthService(t, ns, "auth", nil)
	poll.Until(t, waitTimeout, "managed Redis", func() error {
		if isNotFound(t, ns, "auth-redis", &appsv1.StatefulSet{}) {
			return errorf("not yet")
		}
		return nil
	})

	update(t, as, func(as *authv1alpha1.AuthService) {
		as.Spec.Redis = authv1alpha1.RedisSpec{External: &authv1alpha1.ExternalRedisSpec{
			Addresses:         []authv1alpha1.RedisAddress{"sentinel-0.redis:26379", "sentinel-1.redis:26379"},
			MasterName:        "blacklist",
			Username:          "authserver",
			DB:                3,
			PasswordSecretRef: &authv1alpha1.SecretKeyReference{Name: "corp-redis", Key: "pw"},
			TLS: &authv1alpha1.RedisTLSSpec{
				Enabled: true, ServerName: "redis.corp", CASecretRef: &authv1alpha1.SecretKeyReference{Name: "corp-redis-ca", Key: "ca.pem"},
			},
		}}
	})
	as = waitCondition(t, ns, "auth", authv1alpha1.RedisReadyCondition, metav1.ConditionFalse, authv1alpha1.ReasonRedisSecretUnusable)
	if c := condition(as, authv1alpha1.RedisReadyCondition); !strings.Contains(c.Message, "spec.redis.external.passwordSecretRef names Secret corp-redis") {
		t.Errorf("RedisReady message = %q", c.Message)
	}
	poll.Until(t, waitTimeout, "managed Redis removed", func() error {
		for _, gone := range []bool{
			isNotFound(t, ns, "auth-redis", &appsv1.StatefulSet{}),
			isNotFound(t, ns, "auth-redis", &corev1.Service{}),
			isNotFound(t, ns, "auth-redis", &networkingv1.NetworkPolicy{}),
			len(get(t, ns, "auth-redis", &corev1.Secret{}).Data) == 0,
		} {
			if !gone {
				return errorf("a managed Redis object is still there")
			}
		}
		return nil
	})

	// The user's Secrets are watched, not polled (TestReferencedSecrets_AChangeReconcilesAtOnce):
	// creating one is what brings the next pass.
	createSecret(t, ns, "corp-redis", map[string][]byte{"pw": []byte("s3cret")})
	// The CA bundle's Secret is needed too: the pods would wait for its volume forever.
	poll.Until(t, waitTimeout, "RedisReady naming the CA Secret", func() error {
		c := condition(get(t, ns, "auth", &authv1alpha1.AuthService{}), authv1alpha1.RedisReadyCondition)
		if c.Reason != authv1alpha1.ReasonRedisSecretUnusable || !strings.Contains(c.Message, "spec.redis.external.tls.caSecretRef names Secret corp-redis-ca") {
			return errorf("RedisReady = %s %q", c.Reason, c.Message)
		}
		return nil
	})
	createSecret(t, ns, "corp-redis-ca", map[string][]byte{"ca.pem": []byte("-----BEGIN CERTIFICATE-----\nold\n-----END CERTIFICATE-----\n")})
	waitCondition(t, ns, "auth", authv1alpha1.RedisReadyCondition, metav1.ConditionTrue, authv1alpha1.ReasonExternalRedis)
	d := get(t, ns, "auth-authserver", &appsv1.Deployment{})
	env := envMap(d.Spec.Template.Spec.Containers[0])
	for k, v := range map[string]string{
		"AUTHSERVER_REDIS_ADDRS":           "sentinel-0.redis:26379,sentinel-1.redis:26379",
		"AUTHSERVER_REDIS_MASTER_NAME":     "blacklist",
		"AUTHSERVER_REDIS_USERNAME":        "authserver",
		"AUTHSERVER_REDIS_DB":              "3",
		"AUTHSERVER_REDIS_PASSWORD_FILE":   "/etc/authserver/redis/password",
		"AUTHSERVER_REDIS_TLS":             "true",
		"AUTHSERVER_REDIS_TLS_CA_FILE":     "/etc/authserver/redis-tls/ca.crt",
		"AUTHSERVER_REDIS_TLS_SERVER_NAME": "redis.corp",
	} {
		if env[k] != v {
			t.Errorf("env %s = %q, want %q", k, env[k], v)
		}
	}
	if v, ok := env["AUTHSERVER_SESSION_CAPACITY"]; ok {
		t.Errorf("env AUTHSERVER_SESSION_CAPACITY = %q for an external Redis, whose size the operator does not know", v)
	}
	vols := map[string]corev1.Volume{}
	for _, v := range d.Spec.Template.Spec.Volumes {
		vols[v.Name] = v
	}
	if p := vols["redis-password"].Secret; p == nil || p.SecretName != "corp-redis" || p.Items[0].Key != "pw" || p.Items[0].Path != "password" {
		t.Errorf("password volume = %+v", vols["redis-password"])
	}
	if ca := vols["redis-tls-ca"].Secret; ca == nil || ca.SecretName != "corp-redis-ca" || ca.Items[0].Path != "ca.crt" {
		t.Errorf("CA volume = %+v", vols["redis-tls-ca"])
	}
	// The annotation follows the user's Secret but is no digest of the password, which anyone
	// allowed to read Deployments but not Secrets could test guesses against.
	version := d.Spec.Template.Annotations[RedisPasswordChecksumAnnotation]
	if version == "" || version == checksum([]byte("s3cret")) {
		t.Errorf("password annotation = %q: empty, or the password's plain SHA-256", version)
	}
	update(t, get(t, ns, "corp-redis", &corev1.Secret{}), func(s *corev1.Secret) { s.Data["pw"] = []byte("n3w-s3cret") })
	reconcileOnce(t, newDirectReconciler(t, clocktesting.NewFakePassiveClock(t0), nil), ns, "auth")
	if got := get(t, ns, "auth-authserver", &appsv1.Deployment{}).Spec.Template.Annotations[RedisPasswordChecksumAnnotation]; got == version {
		t.Error("a new external password left the pod template as it was: the server would keep the old one")
	}
	// A rotated CA bundle rolls the pods too: the server reads it at start.
	caVersion := get(t, ns, "auth-authserver", &appsv1.Deployment{}).Spec.Template.Annotations[RedisCAChecksumAnnotation]
	if caVersion == "" {
		t.Fatal("the pod template has no CA bundle checksum")
	}
	update(t, get(t, ns, "corp-redis-ca", &corev1.Secret{}), func(s *corev1.Secret) {
		s.Data["ca.pem"] = []byte("-----BEGIN CERTIFICATE-----\nnew\n-----END CERTIFICATE-----\n")
	})
	reconcileOnce(t, newDirectReconciler(t, clocktesting.NewFakePassiveClock(t0), nil), ns, "auth")
	if got := get(t, ns, "auth-authserver", &appsv1.Deployment{}).Spec.Template.Annotations[RedisCAChecksumAnnotation]; got == caVersion {
		t.Error("a rotated CA bundle left the pod template as it was: running servers would keep the old CA")
	}
}

func TestPodDisruptionBudgets_FollowTheSwitch(t *testing.T) {
	ns := newNamespace(t)
	startManager(t, ns, clocktesting.NewFakePassiveClock(t0))
	as := createAuthService(t, ns, "auth", func(as *authv1alpha1.AuthService) {
		as.Spec.Server.PodDisruptionBudget.Enabled = true
		as.Spec.Server.Replicas = ptr.To[int32](3)
	})
	var pdb *policyv1.PodDisruptionBudget
	poll.Until(t, waitTimeout, "PodDisruptionBudget", func() error {
		pdb = &policyv1.PodDisruptionBudget{}
		if isNotFound(t, ns, "auth-authserver", pdb) {
			return errorf("not yet")
		}
		return nil
	})
	if *pdb.Spec.MaxUnavailable != intstr.FromInt32(1) || pdb.Spec.Selector.MatchLabels["app.kubernetes.io/name"] != "authserver" {
		t.Errorf("PDB spec = %+v", pdb.Spec)
	}
	issuerPDB := &policyv1.PodDisruptionBudget{}
	poll.Until(t, waitTimeout, "the issuer's PodDisruptionBudget", func() error {
		if isNotFound(t, ns, "auth-issuer", issuerPDB) {
			return errorf("not yet")
		}
		return nil
	})
	if *issuerPDB.Spec.MaxUnavailable != intstr.FromInt32(1) || issuerPDB.Spec.Selector.MatchLabels["app.kubernetes.io/name"] != "authserver-issuer" {
		t.Errorf("issuer PDB spec = %+v", issuerPDB.Spec)
	}
	update(t, as, func(as *authv1alpha1.AuthService) { as.Spec.Server.PodDisruptionBudget.Enabled = false })
	poll.Until(t, waitTimeout, "PodDisruptionBudgets removed", func() error {
		for _, name := range []string{"auth-authserver", "auth-issuer"} {
			if !isNotFound(t, ns, name, &policyv1.PodDisruptionBudget{}) {
				return errorf("%s still there", name)
			}
		}
		return nil
	})
}

func TestManagedRedis_AVolumeChangeIsExplainedNotFailed(t *testing.T) {
	ns := newNamespace(t)
	startManager(t, ns, clocktesting.NewFakePassiveClock(t0))
	as := createAuthService(t, ns, "auth", nil)
	poll.Until(t, waitTimeout, "StatefulSet", func() error {
		if isNotFound(t, ns, "auth-redis", &appsv1.StatefulSet{}) {
			return errorf("not yet")
		}
		return nil
	})
	markStatefulSetAvailable(t, ns, "auth-redis")
	big := resource.MustParse("5Gi")
	update(t, as, func(as *authv1alpha1.AuthService) {
		as.Spec.Redis.Managed.Persistence.Size = &big
		as.Spec.Redis.Managed.Resources.Limits = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("512Mi")}
	})
	poll.Until(t, waitTimeout, "the pod template change applied", func() error {
		sts := get(t, ns, "auth-redis", &appsv1.StatefulSet{})
		if sts.Spec.Template.Spec.Containers[0].Resources.Limits.Memory().String() != "512Mi" {
			return errorf("limits = %v", sts.Spec.Template.Spec.Containers[0].Resources.Limits)
		}
		if got := sts.Spec.VolumeClaimTemplates[0].Spec.Resources.Requests.Storage().String(); got != "1Gi" {
			return errorf("volume claim template changed to %s", got)
		}
		return nil
	})
	markStatefulSetAvailable(t, ns, "auth-redis")
	as = waitCondition(t, ns, "auth", authv1alpha1.RedisReadyCondition, metav1.ConditionTrue, authv1alpha1.ReasonReady)
	poll.Until(t, waitTimeout, "the explanation", func() error {
		as = get(t, ns, "auth", as)
		if c := condition(as, authv1alpha1.RedisReadyCondition); !strings.Contains(c.Message, "cannot change") || !strings.Contains(c.Message, "--cascade=orphan") {
			return errorf("RedisReady message = %q", c.Message)
		}
		if as.Status.ObservedGeneration != as.Generation {
			return errorf("observedGeneration %d of %d", as.Status.ObservedGeneration, as.Generation)
		}
		return nil
	})
}
