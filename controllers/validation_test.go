//go:build !unit

package controllers

import (
	"context"
	"fmt"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
)

func TestAPI_DefaultsFillAnEmptySpec(t *testing.T) {
	ns := newNamespace(t)
	as := createAuthService(t, ns, "defaults", nil)
	as = get(t, ns, "defaults", as)
	s := as.Spec
	m := s.Redis.Managed
	switch {
	case ptr.Deref(s.Server.Replicas, 0) != 2, s.Server.Port != 80, s.Server.LogLevel != "info":
		t.Errorf("server defaults = %+v", s.Server)
	case s.Tokens.MaxLifetime.Duration.String() != "15m0s", s.Tokens.Leeway.Duration.String() != "30s":
		t.Errorf("token defaults = %+v", s.Tokens)
	case s.SigningKeys.Algorithm != "ES256", s.SigningKeys.RotationInterval.Duration.String() != "720h0m0s":
		t.Errorf("key defaults = %+v", s.SigningKeys)
	case s.Tokens.RefreshLifetime.Duration.String() != "720h0m0s", s.Tokens.Issuer != "", len(s.Tokens.Audiences) != 0:
		t.Errorf("token defaults = %+v, want refresh 720h, no issuer (the verifier's URL), no audiences", s.Tokens)
	case ptr.Deref(s.Issuance.Replicas, 0) != 2, len(s.Issuance.Clients) != 0, s.Issuance.SingleSession:
		t.Errorf("issuance defaults = %+v, want 2 replicas, no clients (issuance off), several sessions", s.Issuance)
	case s.Server.TLS != nil, s.Tokens.RequireAudience, len(s.Introspection.Clients) != 0:
		t.Errorf("TLS %+v, requireAudience %v, introspection %+v: want plain HTTP, aud not required, no introspection clients", s.Server.TLS, s.Tokens.RequireAudience, s.Introspection)
	case m == nil || s.Redis.External != nil:
		t.Fatalf("redis default = %+v, want managed", s.Redis)
	case m.Image != "redis:7.4-alpine", m.AppendFsync != "always", !ptr.Deref(m.Persistence.Enabled, false), m.Persistence.Size.String() != "1Gi",
		ptr.Deref(m.SessionCapacity, 0) != 100000:
		t.Errorf("managed redis defaults = %+v", m)
	case s.Tokens.SessionMaxLifetime.Duration.String() != "2160h0m0s":
		t.Errorf("token defaults = %+v, want a session lifetime of 2160h", s.Tokens)
	case s.Issuance.RefreshGracePeriod == nil || s.Issuance.RefreshGracePeriod.Duration.String() != "30s", ptr.Deref(s.Issuance.RefreshesPerMinute, 0) != 10:
		t.Errorf("issuance defaults = %+v, want a grace period of 30s and 10 refreshes a minute", s.Issuance)
	}
}

// TestAPI_RejectsInvalidSpecsWithMessagesThatSayWhatToFix sends raw objects, as kubectl
// would, so that every field is exactly what the case writes.
func TestAPI_RejectsInvalidSpecsWithMessagesThatSayWhatToFix(t *testing.T) {
	ns := newNamespace(t)
	cases := []struct {
		name string
		spec map[string]any
		want string
	}{
		{"managed and external", map[string]any{"redis": map[string]any{"managed": map[string]any{}, "external": map[string]any{"addresses": []any{"r:6379"}}}},
			"spec.redis must set exactly one of managed or external"},
		{"neither managed nor external", map[string]any{"redis": map[string]any{}},
			"spec.redis must set exactly one of managed or external"},
		{"rotation interval below an hour", map[string]any{"signingKeys": map[string]any{"rotationInterval": "30m"}},
			"spec.signingKeys.rotationInterval must be at least 1h"},
		{"rotation interval not above lifetime plus leeway", map[string]any{"signingKeys": map[string]any{"rotationInterval": "1h"}, "tokens": map[string]any{"maxLifetime": "1h"}},
			"spec.signingKeys.rotationInterval must be longer than spec.tokens.maxLifetime plus spec.tokens.leeway"},
		{"token lifetime too long", map[string]any{"tokens": map[string]any{"maxLifetime": "48h"}},
			"spec.tokens.maxLifetime must be between 1m and 24h"},
		{"token lifetime too short", map[string]any{"tokens": map[string]any{"maxLifetime": "30s"}},
			"spec.tokens.maxLifetime must be between 1m and 24h"},
		{"leeway too wide", map[string]any{"tokens": map[string]any{"leeway": "10m"}},
			"spec.tokens.leeway must be at most 5m"},
		{"duration that does not parse", map[string]any{"tokens": map[string]any{"maxLifetime": "15 minutes"}},
			"spec.tokens.maxLifetime must be a duration such as 15m"},
		{"min publish time below a second", map[string]any{"signingKeys": map[string]any{"minPublishTime": "500ms"}},
			"spec.signingKeys.minPublishTime must be between 1s and 168h"},
		{"min publish time that does not parse", map[string]any{"signingKeys": map[string]any{"minPublishTime": "20 minutes"}},
			"spec.signingKeys.minPublishTime must be a duration such as 5m"},
		{"tracing endpoint that is not a URL", map[string]any{"server": map[string]any{"tracing": map[string]any{"otlpEndpoint": "otel-collector:4318"}}},
			"spec.server.tracing.otlpEndpoint must be an http or https base URL"},
		{"algorithm", map[string]any{"signingKeys": map[string]any{"algorithm": "RS256"}},
			`supported values: "ES256"`},
		{"revoked kid that is not a kid", map[string]any{"signingKeys": map[string]any{"revokedKeyIDs": []any{"my-old-key"}}},
			"spec.signingKeys.revokedKeyIDs[0]: Invalid value: \"my-old-key\": a revoked key ID must be a kid"},
		{"db on a Redis Cluster", map[string]any{"redis": map[string]any{"external": map[string]any{"addresses": []any{"a:6379", "b:6379"}, "db": int64(2)}}},
			"spec.redis.external.db needs a single address or a Sentinel masterName"},
		{"external without addresses", map[string]any{"redis": map[string]any{"external": map[string]any{"addresses": []any{}}}},
			"spec.redis.external.addresses"},
		{"address without port", map[string]any{"redis": map[string]any{"external": map[string]any{"addresses": []any{"redis.corp"}}}},
			"a Redis address must be host:port"},
		{"zero replicas", map[string]any{"server": map[string]any{"replicas": int64(0)}},
			"spec.server.replicas"},
		{"refresh lifetime shorter than the access lifetime", map[string]any{"tokens": map[string]any{"maxLifetime": "1h", "refreshLifetime": "30m"}},
			"spec.tokens.refreshLifetime must be at least spec.tokens.maxLifetime: a refresh token outlives the access tokens it renews; raise refreshLifetime or lower maxLifetime"},
		{"session lifetime shorter than the access lifetime", map[string]any{"tokens": map[string]any{"maxLifetime": "3h", "sessionMaxLifetime": "2h"}},
			"spec.tokens.sessionMaxLifetime must be at least spec.tokens.maxLifetime: a session lasts at least as long as its first access token; raise sessionMaxLifetime or lower maxLifetime"},
		{"session lifetime too long", map[string]any{"tokens": map[string]any{"sessionMaxLifetime": "9000h"}},
			"spec.tokens.sessionMaxLifetime must be between 1h and 8760h (one year): users log in again after it"},
		{"session lifetime too short", map[string]any{"tokens": map[string]any{"sessionMaxLifetime": "30m"}},
			"spec.tokens.sessionMaxLifetime must be between 1h and 8760h (one year): users log in again after it"},
		{"session lifetime that does not parse", map[string]any{"tokens": map[string]any{"sessionMaxLifetime": "90 days"}},
			"spec.tokens.sessionMaxLifetime must be a duration such as 2160h, 720h or 12h (units h, m, s, ms)"},
		{"refresh grace period too long", map[string]any{"issuance": map[string]any{"refreshGracePeriod": "10m"}},
			"spec.issuance.refreshGracePeriod must be at most 5m: a stolen refresh token may be replayed that long after its rotation; lower it (0s turns it off)"},
		{"refresh grace period that does not parse", map[string]any{"issuance": map[string]any{"refreshGracePeriod": "soon"}},
			"spec.issuance.refreshGracePeriod must be a duration such as 30s, 10s or 0s (units h, m, s, ms)"},
		{"refreshes per minute negative", map[string]any{"issuance": map[string]any{"refreshesPerMinute": -1}},
			"spec.issuance.refreshesPerMinute"},
		{"session capacity below a thousand", map[string]any{"redis": map[string]any{"managed": map[string]any{"sessionCapacity": 10}}},
			"spec.redis.managed.sessionCapacity"},
		{"refresh lifetime beyond 90 days", map[string]any{"tokens": map[string]any{"refreshLifetime": "2161h"}},
			"spec.tokens.refreshLifetime must be at most 2160h"},
		{"refresh lifetime that does not parse", map[string]any{"tokens": map[string]any{"refreshLifetime": "30 days"}},
			"spec.tokens.refreshLifetime must be a duration such as 720h"},
		{"issuer that is not a URL", map[string]any{"tokens": map[string]any{"issuer": "auth.example.com"}},
			"spec.tokens.issuer must be an http or https URL without query or fragment"},
		{"issuer with a query", map[string]any{"tokens": map[string]any{"issuer": "https://auth.example.com/?tenant=a"}},
			"spec.tokens.issuer must be an http or https URL without query or fragment"},
		{"issuer of another scheme", map[string]any{"tokens": map[string]any{"issuer": "ftp://auth.example.com"}},
			"spec.tokens.issuer must be an http or https URL"},
		{"audience with a comma", map[string]any{"tokens": map[string]any{"audiences": []any{"a,b"}}},
			"spec.tokens.audiences[0]: Invalid value: \"a,b\": an audience in spec.tokens.audiences must be one value without commas or spaces"},
		{"client namespace that is not a name", map[string]any{"issuance": map[string]any{"clients": []any{map[string]any{"namespace": "Login_NS", "serviceAccountName": "login"}}}},
			"spec.issuance.clients[].namespace must be a namespace name"},
		{"client ServiceAccount that is not a name", map[string]any{"issuance": map[string]any{"clients": []any{map[string]any{"namespace": "login", "serviceAccountName": "login/service"}}}},
			"spec.issuance.clients[].serviceAccountName must be a ServiceAccount name"},
		{"client without a ServiceAccount", map[string]any{"issuance": map[string]any{"clients": []any{map[string]any{"namespace": "login"}}}},
			"spec.issuance.clients[0].serviceAccountName: Required value"},
		{"client listed twice", map[string]any{"issuance": map[string]any{"clients": []any{
			map[string]any{"namespace": "login", "serviceAccountName": "login"}, map[string]any{"namespace": "login", "serviceAccountName": "login"}}}},
			"spec.issuance.clients[1]: Duplicate value"},
		{"zero issuer replicas", map[string]any{"issuance": map[string]any{"replicas": int64(0)}},
			"spec.issuance.replicas"},
		{"audience required without audiences", map[string]any{"tokens": map[string]any{"requireAudience": true}},
			"spec.tokens.requireAudience needs spec.tokens.audiences: list the audiences tokens must name, or remove requireAudience"},
		{"TLS Secret that is not a name", map[string]any{"server": map[string]any{"tls": map[string]any{"secretName": "Auth_TLS"}}},
			"spec.server.tls.secretName must be a Secret name"},
		{"TLS without a Secret", map[string]any{"server": map[string]any{"tls": map[string]any{}}},
			"spec.server.tls.secretName: Required value"},
		{"TLS port out of range", map[string]any{"server": map[string]any{"tls": map[string]any{"secretName": "t", "port": int64(70000)}}},
			"spec.server.tls.port"},
		{"introspection client namespace that is not a name", map[string]any{"introspection": map[string]any{"clients": []any{map[string]any{"namespace": "Edge", "serviceAccountName": "gw"}}}},
			"spec.introspection.clients[].namespace must be a namespace name"},
		{"introspection client ServiceAccount that is not a name", map[string]any{"introspection": map[string]any{"clients": []any{map[string]any{"namespace": "edge", "serviceAccountName": "gw/1"}}}},
			"spec.introspection.clients[].serviceAccountName must be a ServiceAccount name"},
		{"fsync policy", map[string]any{"redis": map[string]any{"managed": map[string]any{"appendFsync": "sometimes"}}},
			"spec.redis.managed.appendFsync"},
		{"one Redis replica", haSpec(map[string]any{"replicas": int64(1)}), "spec.redis.managed.highAvailability.replicas"},
		{"two Sentinels", haSpec(map[string]any{"sentinels": int64(2)}), "spec.redis.managed.highAvailability.sentinels"},
		{"an even number of Sentinels", haSpec(map[string]any{"sentinels": int64(4)}),
			"spec.redis.managed.highAvailability.sentinels must be odd (3, 5, 7 or 9) so that a majority can always be formed: use an odd number"},
		{"more acks than replicas", haSpec(map[string]any{"replicas": int64(2), "minReplicasAcked": int64(2)}),
			"spec.redis.managed.highAvailability.minReplicasAcked must be at most replicas - 1 (the replicas besides the primary): lower minReplicasAcked or raise replicas"},
		{"more acks than the default replicas", haSpec(map[string]any{"minReplicasAcked": int64(3)}),
			"spec.redis.managed.highAvailability.minReplicasAcked must be at most replicas - 1"},
		{"high availability without persistence", map[string]any{"redis": map[string]any{"managed": map[string]any{
			"highAvailability": map[string]any{}, "persistence": map[string]any{"enabled": false}}}},
			"spec.redis.managed.highAvailability needs spec.redis.managed.persistence.enabled"},
		{"unknown Redis mode", map[string]any{"redis": map[string]any{"external": map[string]any{"addresses": []any{"a:6379"}, "mode": "Replicated"}}},
			`spec.redis.external.mode: Unsupported value: "Replicated"`},
		{"Sentinel mode without a master name", map[string]any{"redis": map[string]any{"external": map[string]any{"addresses": []any{"a:26379"}, "mode": "Sentinel"}}},
			"spec.redis.external.mode Sentinel needs spec.redis.external.masterName"},
		{"master name in Cluster mode", map[string]any{"redis": map[string]any{"external": map[string]any{"addresses": []any{"a:6379"}, "mode": "Cluster", "masterName": "m"}}},
			"spec.redis.external.masterName is a Sentinel setting: remove it or set mode to Sentinel or Auto"},
		{"db in Cluster mode", map[string]any{"redis": map[string]any{"external": map[string]any{"addresses": []any{"a:6379"}, "mode": "Cluster", "db": int64(1)}}},
			"spec.redis.external.db must be 0 with mode Cluster"},
		{"Standalone with several addresses", map[string]any{"redis": map[string]any{"external": map[string]any{"addresses": []any{"a:6379", "b:6379"}, "mode": "Standalone"}}},
			"spec.redis.external.mode Standalone takes exactly one address"},
		{"Sentinel password without Sentinels", map[string]any{"redis": map[string]any{"external": map[string]any{"addresses": []any{"a:6379"},
			"sentinelPasswordSecretRef": map[string]any{"name": "s", "key": "k"}}}},
			"spec.redis.external.sentinelUsername and sentinelPasswordSecretRef are for Sentinels: set masterName, or remove them"},
		{"key prefix shared by every legacy AuthService", keyPrefixSpec("authserver:"), keyPrefixMessage},
		{"key prefix of free text", keyPrefixSpec("tenant-a:"), keyPrefixMessage},
		{"key prefix that another one starts", keyPrefixSpec("authserver:team.a:b:"), keyPrefixMessage},
		{"key prefix with an ACL wildcard", keyPrefixSpec("authserver:team.*:"), keyPrefixMessage},
		{"key prefix without its closing colon", keyPrefixSpec("authserver:team.a"), keyPrefixMessage},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u := &unstructured.Unstructured{Object: map[string]any{
				"apiVersion": authv1alpha1.GroupVersion.String(),
				"kind":       "AuthService",
				"metadata":   map[string]any{"name": fmt.Sprintf("invalid-%d", i), "namespace": ns},
				"spec":       tc.spec,
			}}
			err := k8sClient.Create(context.Background(), u)
			if err == nil {
				t.Fatalf("the API server accepted %v", tc.spec)
			}
			t.Log(err)
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v\nwant it to contain %q", err, tc.want)
			}
		})
	}
}

func TestAPI_AcceptsTheEdgesOfEachRange(t *testing.T) {
	ns := newNamespace(t)
	createAuthService(t, ns, "edges", func(as *authv1alpha1.AuthService) {
		as.Spec.SigningKeys.RotationInterval = metav1.Duration{Duration: 3600e9}
		as.Spec.Tokens.MaxLifetime = metav1.Duration{Duration: 59 * 60e9}
		as.Spec.Tokens.Leeway = metav1.Duration{Duration: 59e9}
		as.Spec.Redis.External = &authv1alpha1.ExternalRedisSpec{Addresses: []authv1alpha1.RedisAddress{"[::1]:6379"}, DB: 15}
		as.Spec.Tokens.RefreshLifetime = as.Spec.Tokens.MaxLifetime
		as.Spec.Tokens.Issuer = "https://auth.example.com/tenants/a"
		as.Spec.Issuance.Clients = []authv1alpha1.IssuanceClient{{Namespace: "login", ServiceAccountName: "login.v2"}}
	})
	createAuthService(t, ns, "longest-refresh", func(as *authv1alpha1.AuthService) {
		as.Spec.Tokens.RefreshLifetime = metav1.Duration{Duration: 2160 * 3600e9}
		as.Spec.Tokens.Issuer = "http://auth-authserver.prod.svc:8080"
	})
}

// TestAPI_RejectsNamesTheObjectsCannotCarry: a name that is not a DNS-1035 label, or too
// long for the objects named after it, is refused at admission with a message, not left to
// fail every pass; the longest allowed name is accepted.
func TestAPI_RejectsNamesTheObjectsCannotCarry(t *testing.T) {
	ns := newNamespace(t)
	for _, tc := range []struct{ name, want string }{
		{strings.Repeat("a", 47), "metadata.name must be at most 46 characters"},
		{"9lives", "metadata.name must be a DNS-1035 label"},
		{"has.dot", "metadata.name must be a DNS-1035 label"},
		{"ends-", "metadata.name must be a DNS-1035 label"},
	} {
		u := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": authv1alpha1.GroupVersion.String(),
			"kind":       "AuthService",
			"metadata":   map[string]any{"name": tc.name, "namespace": ns},
		}}
		err := k8sClient.Create(context.Background(), u)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("name %q: err = %v, want it to contain %q", tc.name, err, tc.want)
		}
	}
	createAuthService(t, ns, strings.Repeat("a", 46), nil)

	ha := func(as *authv1alpha1.AuthService) {
		as.Spec.Redis.Managed = &authv1alpha1.ManagedRedisSpec{HighAvailability: &authv1alpha1.RedisHighAvailabilitySpec{}}
	}
	err := k8sClient.Create(context.Background(), &authv1alpha1.AuthService{
		ObjectMeta: metav1.ObjectMeta{Name: strings.Repeat("b", 38), Namespace: ns},
		Spec:       authv1alpha1.AuthServiceSpec{Redis: authv1alpha1.RedisSpec{Managed: &authv1alpha1.ManagedRedisSpec{HighAvailability: &authv1alpha1.RedisHighAvailabilitySpec{}}}},
	})
	if err == nil || !strings.Contains(err.Error(), "metadata.name must be at most 37 characters with spec.redis.managed.highAvailability") {
		t.Errorf("a 38-character name with high availability: err = %v", err)
	}
	createAuthService(t, ns, strings.Repeat("b", 37), ha)
}

// keyPrefixMessage is the start of the message that refuses a spec.redis.keyPrefix.
const keyPrefixMessage = "spec.redis.keyPrefix must be authserver:<namespace>.<id>:"

// keyPrefixSpec is a spec on an external Redis with the given spec.redis.keyPrefix.
func keyPrefixSpec(prefix string) map[string]any {
	return map[string]any{"redis": map[string]any{"keyPrefix": prefix, "external": map[string]any{"addresses": []any{"r:6379"}}}}
}

// haSpec is a spec whose managed Redis has the given highAvailability.
func haSpec(ha map[string]any) map[string]any {
	return map[string]any{"redis": map[string]any{"managed": map[string]any{"highAvailability": ha}}}
}

// TestAPI_HighAvailabilityDefaults: an empty highAvailability is three Redis pods, three
// Sentinels and one replica acknowledging each logout; an external Redis defaults to Auto.
func TestAPI_HighAvailabilityDefaults(t *testing.T) {
	ns := newNamespace(t)
	as := createAuthService(t, ns, "ha", func(as *authv1alpha1.AuthService) {
		as.Spec.Redis.Managed = &authv1alpha1.ManagedRedisSpec{HighAvailability: &authv1alpha1.RedisHighAvailabilitySpec{}}
	})
	as = get(t, ns, "ha", as)
	h := as.Spec.Redis.Managed.HighAvailability
	if ptr.Deref(h.Replicas, 0) != 3 || ptr.Deref(h.Sentinels, 0) != 3 || ptr.Deref(h.MinReplicasAcked, -1) != 1 {
		t.Errorf("highAvailability defaults = replicas %v sentinels %v minReplicasAcked %v, want 3, 3, 1",
			ptr.Deref(h.Replicas, 0), ptr.Deref(h.Sentinels, 0), ptr.Deref(h.MinReplicasAcked, -1))
	}
	ext := createAuthService(t, ns, "ext", func(as *authv1alpha1.AuthService) {
		as.Spec.Redis.External = &authv1alpha1.ExternalRedisSpec{Addresses: []authv1alpha1.RedisAddress{"r:6379"}}
	})
	if got := get(t, ns, "ext", ext).Spec.Redis.External.Mode; got != authv1alpha1.RedisModeAuto {
		t.Errorf("external mode default = %q, want Auto", got)
	}
}
