package controllers

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
	"github.com/hiringo/auth-operator/authserver/keydomain"
	"github.com/hiringo/auth-operator/internal/testutil/podtest"
)

func wantLabels(t *testing.T, obj client.Object, as *authv1alpha1.AuthService, name, component string) {
	t.Helper()
	want := map[string]string{
		"app.kubernetes.io/managed-by": "auth-operator", "app.kubernetes.io/name": name,
		"app.kubernetes.io/instance": as.Name, "app.kubernetes.io/component": component,
		"auth.hiringo.tech/authservice": as.Name,
	}
	for k, v := range want {
		if obj.GetLabels()[k] != v {
			t.Errorf("%T %s: label %s = %q, want %q", obj, obj.GetName(), k, obj.GetLabels()[k], v)
		}
	}
	if !metav1.IsControlledBy(obj, as) {
		t.Errorf("%T %s is not controlled by the AuthService: %+v", obj, obj.GetName(), obj.GetOwnerReferences())
	}
}

func TestAuthService_CreatesEveryObjectWiredTogether(t *testing.T) {
	ns := newNamespace(t)
	startManager(t, ns, clocktesting.NewFakePassiveClock(t0))
	as := createAuthService(t, ns, "auth", func(as *authv1alpha1.AuthService) {
		as.Spec.Server.CORSOrigins = []string{"https://app.example.com"}
		as.Spec.Server.CompatStatusCodes = true
	})
	waitCondition(t, ns, "auth", authv1alpha1.ServerReadyCondition, metav1.ConditionFalse, "")
	as = get(t, ns, "auth", as)
	set, keysSecret := keySet(t, ns, "auth")
	active, _ := set.Active()
	next, _ := set.Next()
	redisSecret := get(t, ns, "auth-redis", &corev1.Secret{})
	password := string(redisSecret.Data["password"])
	d := get(t, ns, "auth-authserver", &appsv1.Deployment{})
	pod := d.Spec.Template.Spec
	c := pod.Containers[0]

	for _, part := range []struct {
		name  string
		check func(t *testing.T)
	}{
		{"signing keys, in the keyfiles layout, and the JWKS of exactly their public parts", func(t *testing.T) {
			wantLabels(t, keysSecret, as, "authserver", "signing-keys")
			if len(set.Keys) != 2 || as.Status.ActiveKeyID != active.ID || as.Status.NextKeyID != next.ID {
				t.Fatalf("keys %d, status active %s next %s; want 2 keys %s and %s", len(set.Keys), as.Status.ActiveKeyID, as.Status.NextKeyID, active.ID, next.ID)
			}
			cm := get(t, ns, "auth-jwks", &corev1.ConfigMap{})
			wantLabels(t, cm, as, "authserver", "jwks")
			var jwks jose.JSONWebKeySet
			if err := json.Unmarshal([]byte(cm.Data["jwks.json"]), &jwks); err != nil {
				t.Fatalf("jwks.json: %v", err)
			}
			if len(jwks.Keys) != 2 || jwks.Keys[0].KeyID != active.ID || jwks.Keys[1].KeyID != next.ID {
				t.Fatalf("JWKS kids = %v", jwks.Keys)
			}
			for _, k := range jwks.Keys {
				if !k.IsPublic() || k.Algorithm != "ES256" || k.Use != "sig" {
					t.Errorf("JWKS key %s: public=%v alg=%s use=%s", k.KeyID, k.IsPublic(), k.Algorithm, k.Use)
				}
			}
			if strings.Contains(cm.Data["jwks.json"], `"d"`) {
				t.Error("JWKS holds private material")
			}
		}},
		{"managed Redis: password generated once, AOF, restricted, reachable only from the auth servers", func(t *testing.T) {
			wantLabels(t, redisSecret, as, "redis", "redis")
			if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(password) {
				t.Fatalf("generated password has the wrong shape (length %d)", len(password))
			}
			if !strings.Contains(string(redisSecret.Data["redis.conf"]), "requirepass "+password+"\n") {
				t.Error("redis.conf does not require the password")
			}
			sts := get(t, ns, "auth-redis", &appsv1.StatefulSet{})
			wantLabels(t, sts, as, "redis", "redis")
			redis := sts.Spec.Template.Spec.Containers[0]
			wantCmd := []string{"redis-server", "/etc/redis/redis.conf", "--dir", "/data", "--appendonly", "yes", "--appendfsync", "always", "--port", "6379"}
			if redis.Name != "redis" || redis.Image != "redis:7.4-alpine" || !slices.Equal(redis.Command, wantCmd) {
				t.Errorf("redis container %s %s %v", redis.Name, redis.Image, redis.Command)
			}
			if strings.Contains(strings.Join(redis.Args, " ")+strings.Join(redis.Command, " "), password) || len(redis.Env) != 0 {
				t.Error("the Redis password appears in args or env")
			}
			podtest.Restricted(t, "redis", sts.Spec.Template.Spec, 999)
			if v := sts.Spec.Template.Spec.Volumes[0].Secret; v == nil || v.SecretName != "auth-redis" || v.Items[0].Key != "redis.conf" {
				t.Errorf("redis config volume = %+v", sts.Spec.Template.Spec.Volumes)
			}
			if len(sts.Spec.VolumeClaimTemplates) != 1 || sts.Spec.VolumeClaimTemplates[0].Spec.Resources.Requests.Storage().String() != "1Gi" {
				t.Errorf("volume claim templates = %+v", sts.Spec.VolumeClaimTemplates)
			}
			if isNotFound(t, ns, "auth-redis", &appsv1.Deployment{}) == false {
				t.Error("a Redis Deployment exists beside the StatefulSet")
			}
			rsvc := get(t, ns, "auth-redis", &corev1.Service{})
			wantLabels(t, rsvc, as, "redis", "redis")
			if rsvc.Spec.Ports[0].Port != 6379 || rsvc.Spec.Selector["app.kubernetes.io/name"] != "redis" {
				t.Errorf("redis Service = %+v", rsvc.Spec)
			}
			np := get(t, ns, "auth-redis", &networkingv1.NetworkPolicy{})
			wantLabels(t, np, as, "redis", "redis")
			if from := np.Spec.Ingress[0].From; np.Spec.PodSelector.MatchLabels["app.kubernetes.io/name"] != "redis" || len(from) != 2 ||
				from[0].PodSelector.MatchLabels["app.kubernetes.io/name"] != "authserver" || from[0].PodSelector.MatchLabels["app.kubernetes.io/instance"] != "auth" ||
				from[1].PodSelector.MatchLabels["app.kubernetes.io/name"] != "authserver-issuer" || from[1].PodSelector.MatchLabels["app.kubernetes.io/instance"] != "auth" {
				t.Errorf("NetworkPolicy = %+v, want the verifier's and the issuer's pods only", np.Spec)
			}
		}},
		{"the verifier: its pod, probes and environment, without the password", func(t *testing.T) {
			wantLabels(t, d, as, "authserver", "server")
			if ptr.Deref(d.Spec.Replicas, 0) != 2 || d.Spec.Strategy.RollingUpdate.MaxUnavailable.IntValue() != 0 {
				t.Errorf("replicas %d, maxUnavailable %v", ptr.Deref(d.Spec.Replicas, 0), d.Spec.Strategy.RollingUpdate.MaxUnavailable)
			}
			if c.Name != "authserver" || c.Image != testImage || !slices.Equal(c.Command, []string{"/authserver", "serve"}) {
				t.Errorf("server container %s %s %v", c.Name, c.Image, c.Command)
			}
			// The API on http, health and metrics on admin, which the probes use and no Service exposes.
			if len(c.Ports) != 2 || c.Ports[0].Name != "http" || c.Ports[0].ContainerPort != 8080 || c.Ports[1].Name != "admin" || c.Ports[1].ContainerPort != 8081 {
				t.Errorf("ports = %+v", c.Ports)
			}
			if c.LivenessProbe.HTTPGet.Path != "/healthz" || c.ReadinessProbe.HTTPGet.Path != "/readyz" ||
				c.ReadinessProbe.HTTPGet.Port.String() != "admin" || c.LivenessProbe.HTTPGet.Port.String() != "admin" {
				t.Errorf("probes = %+v / %+v", c.LivenessProbe, c.ReadinessProbe)
			}
			env := envMap(c)
			wantEnv := map[string]string{
				"AUTHSERVER_KEYS_DIR":            "/etc/authserver/keys",
				"AUTHSERVER_REDIS_ADDRS":         "auth-redis." + ns + ".svc:6379",
				"AUTHSERVER_REDIS_PASSWORD_FILE": "/etc/authserver/redis/password",
				"AUTHSERVER_LEEWAY":              "30s",
				"AUTHSERVER_CORS_ORIGINS":        "https://app.example.com",
				"AUTHSERVER_COMPAT_STATUS_CODES": "true",
				"AUTHSERVER_LISTEN":              ":8080",
				"AUTHSERVER_ROLE":                "verifier",
				"AUTHSERVER_ISSUER":              "http://auth-authserver." + ns + ".svc",
				"AUTHSERVER_ACCESS_LIFETIME":     "15m0s",
				"AUTHSERVER_REFRESH_LIFETIME":    "720h0m0s",
				"AUTHSERVER_ADMIN_LISTEN":        ":8081",
				"AUTHSERVER_REDIS_KEY_PREFIX":    "authserver:" + ns + ".auth." + string(as.UID) + ":",
				// The managed Redis's default sessionCapacity, for authserver_redis_keys_capacity.
				"AUTHSERVER_SESSION_CAPACITY": "100000",
			}
			for k, v := range wantEnv {
				if env[k] != v {
					t.Errorf("env %s = %q, want %q", k, env[k], v)
				}
			}
			for k, v := range env {
				if strings.Contains(v, password) {
					t.Errorf("env %s carries the Redis password", k)
				}
			}
		}},
		{"the verifier's volumes: the public projection of the keys, never the signing keys, and the password", func(t *testing.T) {
			mounts := map[string]corev1.VolumeMount{}
			for _, m := range c.VolumeMounts {
				mounts[m.MountPath] = m
			}
			if m, ok := mounts["/etc/authserver/keys"]; !ok || !m.ReadOnly {
				t.Errorf("keys mount = %+v", c.VolumeMounts)
			}
			if m, ok := mounts["/etc/authserver/redis"]; !ok || !m.ReadOnly {
				t.Errorf("redis password mount = %+v", c.VolumeMounts)
			}
			vols := map[string]corev1.Volume{}
			for _, v := range pod.Volumes {
				vols[v.Name] = v
			}
			// The verifier mounts the public projection of the keys, never the signing-key Secret.
			if sec := vols["keys"].Secret; sec == nil || sec.SecretName != "auth-public-keys" || vols["keys"].ConfigMap != nil {
				t.Errorf("keys volume = %+v, want the Secret auth-public-keys", vols["keys"])
			}
			if vols["redis-password"].Secret.SecretName != "auth-redis" || vols["redis-password"].Secret.Items[0].Key != "password" {
				t.Errorf("volumes = %+v", pod.Volumes)
			}
			for _, v := range pod.Volumes {
				if v.Secret != nil && v.Secret.SecretName == "auth-signing-keys" {
					t.Errorf("the verifier mounts the signing-key Secret as volume %s", v.Name)
				}
			}
			projection := get(t, ns, "auth-public-keys", &corev1.Secret{})
			wantLabels(t, projection, as, "authserver", "public-keys")
			if len(projection.Data) != 3 || len(projection.Data["keyset.json"]) == 0 ||
				string(projection.Data[active.ID+".pub.pem"]) != string(keysSecret.Data[active.ID+".pub.pem"]) ||
				string(projection.Data[next.ID+".pub.pem"]) != string(keysSecret.Data[next.ID+".pub.pem"]) {
				t.Errorf("public projection holds %d files, want keyset.json and the two public keys of the Secret", len(projection.Data))
			}
		}},
		{"the pod templates roll with the Secret's versions, never a digest the password could be guessed from", func(t *testing.T) {
			// A digest of the password or of redis.conf would let anyone allowed to read
			// workloads test guesses offline.
			redisSecret := get(t, ns, "auth-redis", &corev1.Secret{})
			version := sha256.Sum256([]byte(string(redisSecret.UID) + "/" + redisSecret.ResourceVersion))
			plain := sha256.Sum256([]byte(password))
			if got := d.Spec.Template.Annotations["auth.hiringo.tech/redis-password-checksum"]; got != hex.EncodeToString(version[:]) || got == hex.EncodeToString(plain[:]) {
				t.Errorf("password checksum annotation = %q, want the digest of the Secret's UID and resourceVersion", got)
			}
			confSum := sha256.Sum256(redisSecret.Data["redis.conf"])
			if got := get(t, ns, "auth-redis", &appsv1.StatefulSet{}).Spec.Template.Annotations["auth.hiringo.tech/redis-config-checksum"]; got != hex.EncodeToString(version[:]) || got == hex.EncodeToString(confSum[:]) {
				t.Errorf("redis config checksum annotation = %q, want the digest of the Secret's UID and resourceVersion", got)
			}
		}},
		{"the verifier runs restricted behind its Service, without a PodDisruptionBudget; the status has the URLs", func(t *testing.T) {
			podtest.Restricted(t, "authserver", pod, 65532)
			svc := get(t, ns, "auth-authserver", &corev1.Service{})
			wantLabels(t, svc, as, "authserver", "server")
			if len(svc.Spec.Ports) != 1 {
				t.Errorf("server Service ports = %+v, want only http", svc.Spec.Ports)
			}
			if p := svc.Spec.Ports[0]; p.Port != 80 || p.TargetPort.String() != "http" || p.Name != "http" {
				t.Errorf("server Service port = %+v", p)
			}
			if !isNotFound(t, ns, "auth-authserver", &policyv1.PodDisruptionBudget{}) {
				t.Error("a PodDisruptionBudget exists though it is off")
			}
			if as.Status.ServerURL != "http://auth-authserver."+ns+".svc" || as.Status.IssuerURL != "http://auth-issuer."+ns+".svc" || as.Status.Issuer != as.Status.ServerURL {
				t.Errorf("serverURL = %q, issuerURL = %q, issuer = %q", as.Status.ServerURL, as.Status.IssuerURL, as.Status.Issuer)
			}
		}},
	} {
		t.Run(part.name, part.check)
	}

	// Last, as it changes what the parts above looked at.
	t.Run("Ready follows the workloads' status, as their controllers would write it", func(t *testing.T) {
		if c := condition(as, authv1alpha1.ReadyCondition); c.Status != metav1.ConditionFalse || !strings.Contains(c.Message, "RedisReady") || !strings.Contains(c.Message, "IssuerReady") {
			t.Errorf("Ready before the workloads are up = %+v", c)
		}
		markStatefulSetAvailable(t, ns, "auth-redis")
		markDeploymentAvailable(t, ns, "auth-authserver")
		markDeploymentAvailable(t, ns, "auth-issuer")
		as = waitCondition(t, ns, "auth", authv1alpha1.ReadyCondition, metav1.ConditionTrue, "Ready")
		if as.Status.ObservedGeneration != as.Generation || as.Status.Conditions[0].Type != authv1alpha1.ReadyCondition {
			t.Errorf("observedGeneration %d of %d, first condition %s", as.Status.ObservedGeneration, as.Generation, as.Status.Conditions[0].Type)
		}
		for _, c := range as.Status.Conditions {
			if c.ObservedGeneration != as.Generation {
				t.Errorf("condition %s observedGeneration = %d", c.Type, c.ObservedGeneration)
			}
		}
		if len(as.Status.Keys) != 2 || as.Status.Keys[0].State != string(keydomain.StateActive) || as.Status.NextRotationTime == nil {
			t.Errorf("status keys = %+v next rotation %v", as.Status.Keys, as.Status.NextRotationTime)
		}
		waitEvent(t, ns, "auth", corev1.EventTypeNormal, "KeyCreated", active.ID, next.ID)
	})
}
