package controllers

import (
	"errors"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
	"github.com/hiringo/auth-operator/authserver/keyfiles"
	"github.com/hiringo/auth-operator/internal/keylifecycle"
	"github.com/hiringo/auth-operator/internal/testutil/tlstest"
)

// Each condition's setter is pure: these tables give it the facts a phase records in the
// scope and check the status, reason and message it chooses, without a server.

// wantCond is what a setter should choose: nil for nothing (the condition is kept), else
// the status and reason, and fragments of the message.
type wantCond struct {
	status metav1.ConditionStatus
	reason string
	says   []string
}

func checkCond(t *testing.T, got *metav1.Condition, want *wantCond) {
	t.Helper()
	switch {
	case want == nil && got != nil:
		t.Fatalf("chose %s/%s %q, want nothing (keep the condition)", got.Status, got.Reason, got.Message)
	case want == nil:
		return
	case got == nil:
		t.Fatalf("chose nothing, want %s/%s", want.status, want.reason)
	case got.Status != want.status || got.Reason != want.reason:
		t.Errorf("chose %s/%s %q, want %s/%s", got.Status, got.Reason, got.Message, want.status, want.reason)
	}
	for _, s := range want.says {
		if !strings.Contains(got.Message, s) {
			t.Errorf("message %q does not say %q", got.Message, s)
		}
	}
}

// testScope is the scope of a pass of the AuthService auth in prod that found nothing yet,
// with an image and a Redis connection (so the workloads' phases are not held back).
func testScope(mutate func(*authv1alpha1.AuthService)) *scope {
	as := &authv1alpha1.AuthService{ObjectMeta: metav1.ObjectMeta{Name: "auth", Namespace: "prod", Generation: 1}}
	if mutate != nil {
		mutate(as)
	}
	return &scope{as: as, now: t0, image: testImage, redis: &redisConnection{addresses: []string{"auth-redis.prod.svc:6379"}}, failed: map[string]error{}}
}

func TestFailedCondition(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want *wantCond
	}{
		{"a write that lost a race keeps the condition", apierrors.NewConflict(schema.GroupResource{Resource: "secrets"}, "x", errors.New("modified")), nil},
		{"a create that lost a race keeps the condition", apierrors.NewAlreadyExists(schema.GroupResource{Resource: "secrets"}, "x"), nil},
		{"a foreign object", &foreignObjectError{kind: "Service", name: "auth-redis", why: "no app.kubernetes.io/managed-by=auth-operator label"},
			&wantCond{metav1.ConditionFalse, authv1alpha1.ReasonForeignObject, []string{"Service auth-redis already exists and is not this AuthService's (no app.kubernetes.io/managed-by"}}},
		{"any other error, capitalized", errors.New("applying Deployment auth-authserver: denied"),
			&wantCond{metav1.ConditionFalse, authv1alpha1.ReasonReconcileFailed, []string{"Applying Deployment auth-authserver: denied"}}},
	} {
		t.Run(tc.name, func(t *testing.T) { checkCond(t, failedCondition(tc.err), tc.want) })
	}
}

func TestKeysReadyCondition(t *testing.T) {
	plan, err := keylifecycle.Next(keylifecycle.Request{
		Policy: keylifecycle.Policy{RotationInterval: 24 * time.Hour, MaxTokenLifetime: 15 * time.Minute, Leeway: 30 * time.Second},
		Now:    t0,
	}, keyfiles.GenerateKey)
	if err != nil {
		t.Fatal(err)
	}
	active, _ := plan.Set.Active()
	next, _ := plan.Set.Next()
	lost := plan
	lost.Record.LostKeyID = "k-lost"
	takesOver := plan.NextRotation.UTC().Format(time.RFC3339)
	for _, tc := range []struct {
		name  string
		found keysFound
		want  *wantCond
	}{
		{"nothing found", keysFound{}, nil},
		{"a Secret that does not decode is left untouched", keysFound{invalid: errors.New("keyset.json: unexpected end of JSON input")},
			&wantCond{metav1.ConditionFalse, authv1alpha1.ReasonSecretInvalid, []string{"Secret auth-signing-keys does not hold a valid key set (keyset.json: unexpected end of JSON input)", "left untouched", "delete it to start over"}}},
		{"the keys written", keysFound{plan: &plan},
			&wantCond{metav1.ConditionTrue, authv1alpha1.ReasonKeysPublished, []string{"Key " + active.ID + " signs; key " + next.ID + " is published and takes over at " + takesOver, "0 retired key(s)"}}},
		{"new keys after the Secret was deleted", keysFound{plan: &lost},
			&wantCond{metav1.ConditionTrue, authv1alpha1.ReasonSecretRecreated, []string{"Secret auth-signing-keys was deleted and recreated with new keys: tokens signed by key k-lost no longer verify. Key " + active.ID + " signs"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := testScope(nil)
			s.keys = tc.found
			checkCond(t, keysReadyCondition(s), tc.want)
		})
	}
}

func TestTLSReadyCondition(t *testing.T) {
	ca := tlstest.NewCA(t)
	now := time.Now()
	names := []string{"auth-authserver.prod.svc", "auth-issuer.prod.svc"}
	good := ca.Issue(t, now.Add(90*24*time.Hour), names...).Cert
	notYet := ca.IssueBetween(t, now.Add(time.Hour), now.Add(48*time.Hour), names...).Cert
	oneName := ca.Issue(t, now.Add(90*24*time.Hour), names[0]).Cert
	withTLS := func(as *authv1alpha1.AuthService) {
		as.Spec.Server.TLS = &authv1alpha1.ServerTLSSpec{SecretName: "auth-tls"}
		as.Status.TLS = &authv1alpha1.TLSStatus{CABundle: "-----BEGIN CERTIFICATE-----"}
	}
	for _, tc := range []struct {
		name     string
		mutate   func(*authv1alpha1.AuthService)
		found    tlsFound
		now      time.Time
		useLabel bool
		want     *wantCond
		usable   bool
	}{
		{"plain HTTP", nil, tlsFound{}, now, false,
			&wantCond{metav1.ConditionTrue, authv1alpha1.ReasonPlainHTTP, []string{"spec.server.tls is not set: the verifier and the issuer serve plain HTTP"}}, true},
		{"nothing found", withTLS, tlsFound{}, now, false, nil, false},
		{"an unusable Secret", withTLS, tlsFound{unusable: true}, now, false,
			&wantCond{metav1.ConditionFalse, authv1alpha1.ReasonTLSSecretUnusable, []string{"spec.server.tls.secretName names Secret auth-tls, which this AuthService cannot use: it must exist in namespace prod with non-empty keys tls.crt and tls.key; create or fix it", "Running pods keep serving"}}, false},
		{"an unusable Secret, with the use label required", withTLS, tlsFound{unusable: true}, now, true,
			&wantCond{metav1.ConditionFalse, authv1alpha1.ReasonTLSSecretUnusable, []string{"tls.crt and tls.key and the label use.auth.hiringo.tech/auth=true; create or fix it"}}, false},
		{"a pair that does not load", withTLS, tlsFound{loadErr: errors.New("tls: private key does not match public key")}, now, false,
			&wantCond{metav1.ConditionFalse, authv1alpha1.ReasonCertificateInvalid, []string{"Secret auth-tls (spec.server.tls.secretName) does not hold a usable certificate: tls: private key does not match public key; fix tls.crt and tls.key"}}, false},
		{"expired", withTLS, tlsFound{leaf: good}, good.NotAfter.Add(time.Second), false,
			&wantCond{metav1.ConditionFalse, authv1alpha1.ReasonCertificateInvalid, []string{"expired at " + good.NotAfter.UTC().Format(time.RFC3339), "renew it"}}, true},
		{"not valid yet", withTLS, tlsFound{leaf: notYet}, now, false,
			&wantCond{metav1.ConditionFalse, authv1alpha1.ReasonCertificateInvalid, []string{"is not valid before " + notYet.NotBefore.UTC().Format(time.RFC3339)}}, true},
		{"not naming both Services", withTLS, tlsFound{leaf: oneName}, now, false,
			&wantCond{metav1.ConditionFalse, authv1alpha1.ReasonCertificateInvalid, []string{"does not name auth-issuer.prod.svc: add them to its DNS names"}}, true},
		{"valid", withTLS, tlsFound{leaf: good}, now, false,
			&wantCond{metav1.ConditionTrue, authv1alpha1.ReasonCertificateValid, []string{"serve HTTPS with the certificate of Secret auth-tls, valid until " + good.NotAfter.UTC().Format(time.RFC3339), "consumers trust the CA in status.tls.caBundle"}}, true},
		{"valid, without a CA in the Secret", func(as *authv1alpha1.AuthService) { withTLS(as); as.Status.TLS.CABundle = "" }, tlsFound{leaf: good}, now, false,
			&wantCond{metav1.ConditionTrue, authv1alpha1.ReasonCertificateValid, []string{"consumers trust the CA that signed it (the Secret has no ca.crt)"}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := testScope(tc.mutate)
			s.tls, s.now, s.requireSecretUseLabel = tc.found, tc.now, tc.useLabel
			checkCond(t, tlsReadyCondition(s), tc.want)
			if s.tlsUsable() != tc.usable {
				t.Errorf("tlsUsable = %v, want %v", s.tlsUsable(), tc.usable)
			}
		})
	}
}

// TestWorkloadConditions: ServerReady and IssuerReady say what held their phase back, or
// judge the Deployment as `kubectl rollout status` does.
func TestWorkloadConditions(t *testing.T) {
	deployment := func(generation int64, status appsv1.DeploymentStatus) *appsv1.Deployment {
		return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "auth-authserver", Generation: generation}, Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](2)}, Status: status}
	}
	for _, tc := range []struct {
		name   string
		adjust func(*scope)
		d      *appsv1.Deployment
		want   *wantCond
	}{
		{"Redis not settled", func(s *scope) { s.redis = nil }, nil,
			&wantCond{metav1.ConditionFalse, authv1alpha1.ReasonWaitingForRedis, []string{"The auth server is not rolled out until its Redis settings are complete: see the RedisReady condition"}}},
		{"TLS Secret unusable", func(s *scope) { s.as.Spec.Server.TLS = &authv1alpha1.ServerTLSSpec{SecretName: "auth-tls"} }, nil,
			&wantCond{metav1.ConditionFalse, authv1alpha1.ReasonWaitingForTLS, []string{"The auth server is not rolled out while its TLS Secret is unusable (its running pods keep serving): see the TLSReady condition"}}},
		{"no image", func(s *scope) { s.image = "" }, nil,
			&wantCond{metav1.ConditionFalse, authv1alpha1.ReasonNoImage, []string{"No auth-server image: set spec.server.image, or start the operator with --authserver-image"}}},
		{"nothing read back", nil, nil, nil},
		{"spec not observed", nil, deployment(2, appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 2, UpdatedReplicas: 2, AvailableReplicas: 2}),
			&wantCond{metav1.ConditionFalse, authv1alpha1.ReasonProgressing, []string{"not yet observed"}}},
		{"half updated", nil, deployment(1, appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 3, UpdatedReplicas: 1, AvailableReplicas: 2}),
			&wantCond{metav1.ConditionFalse, authv1alpha1.ReasonProgressing, []string{"1 of 2 auth-server replicas updated"}}},
		{"old pods terminating", nil, deployment(1, appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 3, UpdatedReplicas: 2, AvailableReplicas: 3}),
			&wantCond{metav1.ConditionFalse, authv1alpha1.ReasonProgressing, []string{"1 old auth-server replicas pending termination"}}},
		{"updated but not available", nil, deployment(1, appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 2, UpdatedReplicas: 2, AvailableReplicas: 1}),
			&wantCond{metav1.ConditionFalse, authv1alpha1.ReasonUnavailable, []string{"1 of 2 auth-server replicas available"}}},
		{"done", nil, deployment(1, appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 2, UpdatedReplicas: 2, AvailableReplicas: 2}),
			&wantCond{metav1.ConditionTrue, authv1alpha1.ReasonReady, []string{"2 of 2 auth-server replicas available at http://auth-authserver.prod.svc"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := testScope(nil)
			if tc.adjust != nil {
				tc.adjust(s)
			}
			s.server = tc.d
			checkCond(t, serverReadyCondition(s), tc.want)
			// The issuer's condition reads the same, naming the issuer.
			s.server, s.issuer = nil, tc.d
			issuer := tc.want
			if issuer != nil {
				issuer = &wantCond{issuer.status, issuer.reason, nil}
				for _, say := range tc.want.says {
					say = strings.ReplaceAll(say, "auth server is", "issuer is")
					say = strings.ReplaceAll(say, "auth-server replicas", "issuer replicas")
					issuer.says = append(issuer.says, strings.ReplaceAll(say, "http://auth-authserver.prod.svc", "http://auth-issuer.prod.svc"))
				}
			}
			checkCond(t, issuerReadyCondition(s), issuer)
		})
	}
}

func TestBlacklistIntactCondition(t *testing.T) {
	s := testScope(nil)
	checkCond(t, blacklistIntactCondition(s), nil)
	s.storeStateRead = true
	checkCond(t, blacklistIntactCondition(s), &wantCond{metav1.ConditionUnknown, authv1alpha1.ReasonNotReported, []string{"not yet recorded"}})
	s.storeState = map[string]string{authv1alpha1.StoreStateGenerationKey: "g2", authv1alpha1.StoreStateLostAtKey: t0.Add(-time.Hour).Format(time.RFC3339)}
	checkCond(t, blacklistIntactCondition(s), &wantCond{metav1.ConditionFalse, authv1alpha1.ReasonStoreDataLost, []string{"lost its data at " + t0.Add(-time.Hour).Format(time.RFC3339)}})
}

func TestRedisReadyCondition(t *testing.T) {
	managed := func(as *authv1alpha1.AuthService) { as.Spec.Redis.Managed = &authv1alpha1.ManagedRedisSpec{} }
	replicated := func(as *authv1alpha1.AuthService) { withHA(as) }
	external := func(as *authv1alpha1.AuthService) {
		as.Spec.Redis.External = &authv1alpha1.ExternalRedisSpec{Addresses: []authv1alpha1.RedisAddress{"a.corp:6379", "b.corp:6379"}}
	}
	sts := func(name string, replicas, available int32) *appsv1.StatefulSet {
		return &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: name, Generation: 1}, Spec: appsv1.StatefulSetSpec{Replicas: ptr.To(replicas)},
			Status: appsv1.StatefulSetStatus{ObservedGeneration: 1, Replicas: replicas, UpdatedReplicas: replicas, AvailableReplicas: available}}
	}
	deployment := func(generation, observed int64, available int32) *appsv1.Deployment {
		return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "auth-redis", Generation: generation},
			Status: appsv1.DeploymentStatus{ObservedGeneration: observed, AvailableReplicas: available}}
	}
	deleting := sts("auth-redis", 1, 1)
	deleting.DeletionTimestamp = &metav1.Time{Time: t0}
	for _, tc := range []struct {
		name   string
		mutate func(*authv1alpha1.AuthService)
		adjust func(*scope)
		found  redisFound
		want   *wantCond
	}{
		{"a key prefix of another namespace", func(as *authv1alpha1.AuthService) { as.Spec.Redis.KeyPrefix = "authserver:other.x:" }, nil, redisFound{},
			&wantCond{metav1.ConditionFalse, authv1alpha1.ReasonKeyPrefixInvalid, []string{`spec.redis.keyPrefix "authserver:other.x:" is not in this AuthService's key space`}}},
		{"an unusable external Secret", external, nil,
			redisFound{unusable: &authv1alpha1.SecretKeyReference{Name: "corp-redis", Key: "pw"}, unusableField: "spec.redis.external.passwordSecretRef"},
			&wantCond{metav1.ConditionFalse, authv1alpha1.ReasonRedisSecretUnusable, []string{`spec.redis.external.passwordSecretRef names Secret corp-redis, which this AuthService cannot use: it must exist in namespace prod with a non-empty key "pw"; create or fix it`}}},
		{"an unusable external Secret, with the use label required", external, func(s *scope) { s.requireSecretUseLabel = true },
			redisFound{unusable: &authv1alpha1.SecretKeyReference{Name: "corp-redis", Key: "pw"}, unusableField: "spec.redis.external.passwordSecretRef"},
			&wantCond{metav1.ConditionFalse, authv1alpha1.ReasonRedisSecretUnusable, []string{`key "pw" and the label use.auth.hiringo.tech/auth=true; create or fix it`}}},
		{"the external Redis", external, func(s *scope) { s.redis = &redisConnection{addresses: []string{"a.corp:6379", "b.corp:6379"}} }, redisFound{},
			&wantCond{metav1.ConditionTrue, authv1alpha1.ReasonExternalRedis, []string{"Using the external Redis at a.corp:6379,b.corp:6379; the auth server's readiness reports whether it answers"}}},
		{"a managed password that cannot go into redis.conf", managed, nil, redisFound{badPassword: errors.New(`key "password" holds a password that cannot be written into redis.conf: the password holds a newline`)},
			&wantCond{metav1.ConditionFalse, authv1alpha1.ReasonRedisPasswordInvalid, []string{`Secret auth-redis: key "password" holds a password that cannot be written into redis.conf: the password holds a newline; Redis and the auth server are left as they are`}}},
		{"replicated without an image", replicated, func(s *scope) { s.image = "" }, redisFound{},
			&wantCond{metav1.ConditionFalse, authv1alpha1.ReasonNoImage, []string{"No auth-server image for the Redis pods' topology init step"}}},
		{"replacing a StatefulSet", managed, nil, redisFound{replacing: sts("auth-redis", 1, 1)},
			&wantCond{metav1.ConditionFalse, authv1alpha1.ReasonProgressing, []string{"Replacing StatefulSet auth-redis for the switch between one Redis pod and replicated Redis; its pods and volumes are kept"}}},
		{"waiting for the garbage collector", managed, nil, redisFound{replacing: deleting},
			&wantCond{metav1.ConditionFalse, authv1alpha1.ReasonProgressing, []string{"Waiting for the garbage collector to release the pods of the old StatefulSet auth-redis"}}},
		{"a single Redis not read back", managed, nil, redisFound{unobserved: errors.New("timeout"), unobservedName: "auth-redis"},
			&wantCond{metav1.ConditionUnknown, authv1alpha1.ReasonProgressing, []string{"Waiting to observe Redis auth-redis: timeout"}}},
		{"a replicated Redis not read back", replicated, nil, redisFound{unobserved: errors.New("timeout"), unobservedName: "auth-redis-sentinel"},
			&wantCond{metav1.ConditionUnknown, authv1alpha1.ReasonProgressing, []string{"Waiting to observe StatefulSet auth-redis-sentinel: timeout"}}},
		{"nothing read back", managed, nil, redisFound{}, nil},
		{"one pod, available", managed, nil, redisFound{workload: sts("auth-redis", 1, 1)},
			&wantCond{metav1.ConditionTrue, authv1alpha1.ReasonReady, []string{"Redis is available at auth-redis.prod.svc:6379"}}},
		{"one pod, available, a volume change not applied", func(as *authv1alpha1.AuthService) {
			managed(as)
			as.Spec.Redis.Managed.Persistence.Size = ptr.To(resource.MustParse("5Gi"))
		}, nil, redisFound{workload: sts("auth-redis", 1, 1), claimKept: true},
			&wantCond{metav1.ConditionTrue, authv1alpha1.ReasonReady, []string{"Redis is available at auth-redis.prod.svc:6379; spec.redis.managed.persistence (size 5Gi, storage class \"\") is not applied", "cannot change", "data-auth-redis-0", "--cascade=orphan"}}},
		{"one pod, still three after a switch from replicated Redis", managed, nil, redisFound{workload: func() *appsv1.StatefulSet {
			s := sts("auth-redis", 1, 1)
			s.Status.Replicas = 3
			return s
		}()}, &wantCond{metav1.ConditionFalse, authv1alpha1.ReasonProgressing, []string{"Redis auth-redis is rolling out a change"}}},
		{"one pod, none available", managed, nil, redisFound{workload: sts("auth-redis", 1, 0)},
			&wantCond{metav1.ConditionFalse, authv1alpha1.ReasonUnavailable, []string{"Redis auth-redis has no available pod yet"}}},
		{"a Deployment without persistence, rolling", managed, nil, redisFound{workload: deployment(2, 1, 1)},
			&wantCond{metav1.ConditionFalse, authv1alpha1.ReasonProgressing, []string{"Redis auth-redis is rolling out a change"}}},
		{"a Deployment without persistence, available", managed, nil, redisFound{workload: deployment(1, 1, 1)},
			&wantCond{metav1.ConditionTrue, authv1alpha1.ReasonReady, []string{"Redis is available at auth-redis.prod.svc:6379"}}},
		{"replicated, before the Sentinels start", replicated, nil, redisFound{workload: sts("auth-redis", 1, 0)},
			&wantCond{metav1.ConditionFalse, authv1alpha1.ReasonUnavailable, []string{"Waiting for a Redis pod of auth-redis before the Sentinels start"}}},
		{"replicated, a primary, a replica and a Sentinel majority", replicated, nil, redisFound{workload: sts("auth-redis", 3, 2), sentinels: sts("auth-redis-sentinel", 3, 2)},
			&wantCond{metav1.ConditionTrue, authv1alpha1.ReasonReady, []string{"Redis is available through the Sentinels at auth-redis-sentinel.prod.svc:26379; 2 of 3 Redis pods and 2 of 3 Sentinels available"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := testScope(tc.mutate)
			if tc.adjust != nil {
				tc.adjust(s)
			}
			s.redisFound = tc.found
			checkCond(t, redisReadyCondition(s), tc.want)
		})
	}
}
