package controllers

import (
	"context"
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
	case m == nil || s.Redis.External != nil:
		t.Fatalf("redis default = %+v, want managed", s.Redis)
	case m.Image != "redis:7.4-alpine", m.AppendFsync != "always", !ptr.Deref(m.Persistence.Enabled, false), m.Persistence.Size.String() != "1Gi":
		t.Errorf("managed redis defaults = %+v", m)
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
		{"fsync policy", map[string]any{"redis": map[string]any{"managed": map[string]any{"appendFsync": "sometimes"}}},
			"spec.redis.managed.appendFsync"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u := &unstructured.Unstructured{Object: map[string]any{
				"apiVersion": authv1alpha1.GroupVersion.String(),
				"kind":       "AuthService",
				"metadata":   map[string]any{"name": "invalid-" + string(rune('a'+i)), "namespace": ns},
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
	})
}
