package v1alpha1

import (
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestAuthServiceNames(t *testing.T) {
	as := &AuthService{ObjectMeta: metav1.ObjectMeta{Name: "auth", Namespace: "prod"}}
	for _, tc := range []struct{ got, want string }{
		{as.SigningKeysSecretName(), "auth-signing-keys"},
		{as.JWKSConfigMapName(), "auth-jwks"},
		{as.PublicKeysSecretName(), "auth-public-keys"},
		{as.UserLogoutsConfigMapName(), "auth-user-logouts"},
		{as.StoreStateConfigMapName(), "auth-store-state"},
		{as.ServerName(), "auth-authserver"},
		{as.IssuerName(), "auth-issuer"},
		{as.RedisName(), "auth-redis"},
		{as.RedisHeadlessName(), "auth-redis-headless"},
		{as.RedisSentinelName(), "auth-redis-sentinel"},
		{as.IssuerClusterRoleBindingName(), "auth-operator-issuer-prod-auth"},
		{as.VerifierClusterRoleBindingName(), "auth-operator-verifier-prod-auth"},
	} {
		if tc.got != tc.want {
			t.Errorf("name = %q, want %q", tc.got, tc.want)
		}
	}
}

func TestIssuerClusterRoleBindingName_IsUniqueAndBounded(t *testing.T) {
	short := &AuthService{ObjectMeta: metav1.ObjectMeta{Name: "auth", Namespace: "prod"}}
	if got := short.IssuerClusterRoleBindingName(); got != "auth-operator-issuer-prod-auth" {
		t.Errorf("short name = %q", got)
	}
	long := func(ns, name string) string {
		return (&AuthService{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}).IssuerClusterRoleBindingName()
	}
	a := long(strings.Repeat("n", 63), strings.Repeat("a", 253))
	b := long(strings.Repeat("n", 63), strings.Repeat("a", 252)+"b")
	// Long names that join to the same string are told apart by the hash of the pair.
	c1, c2 := long("team-a", "auth"+strings.Repeat("x", 240)), long("team", "a-auth"+strings.Repeat("x", 240))
	for _, n := range []string{a, b, c1, c2} {
		if len(n) > 253 || !strings.HasPrefix(n, "auth-operator-issuer-") {
			t.Errorf("name %q (%d characters)", n, len(n))
		}
	}
	if a == b || c1 == c2 {
		t.Error("two AuthServices share a ClusterRoleBinding name")
	}
	if a != long(strings.Repeat("n", 63), strings.Repeat("a", 253)) {
		t.Error("the name is not stable")
	}
}

func TestReferencedSecretNames(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec AuthServiceSpec
		want []string
	}{
		{"a managed Redis and plain HTTP name none", AuthServiceSpec{Redis: RedisSpec{Managed: &ManagedRedisSpec{}}}, nil},
		{"the serving certificate", AuthServiceSpec{Server: ServerSpec{TLS: &ServerTLSSpec{SecretName: "auth-tls"}}}, []string{"auth-tls"}},
		{"every Secret of an external Redis", AuthServiceSpec{
			Server: ServerSpec{TLS: &ServerTLSSpec{SecretName: "auth-tls"}},
			Redis: RedisSpec{External: &ExternalRedisSpec{
				PasswordSecretRef:         &SecretKeyReference{Name: "corp-redis", Key: "pw"},
				SentinelPasswordSecretRef: &SecretKeyReference{Name: "corp-sentinel", Key: "pw"},
				TLS:                       &RedisTLSSpec{Enabled: true, CASecretRef: &SecretKeyReference{Name: "corp-ca", Key: "ca.pem"}},
			}},
		}, []string{"auth-tls", "corp-redis", "corp-sentinel", "corp-ca"}},
		{"an external Redis without Secrets", AuthServiceSpec{Redis: RedisSpec{External: &ExternalRedisSpec{TLS: &RedisTLSSpec{Enabled: true}}}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := (&AuthService{Spec: tc.spec}).ReferencedSecretNames(); !slices.Equal(got, tc.want) {
				t.Errorf("ReferencedSecretNames = %v, want %v", got, tc.want)
			}
		})
	}
}
