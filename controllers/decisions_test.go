package controllers

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
	"github.com/hiringo/auth-operator/internal/keylifecycle"
)

// These are the controller's pure decisions, tested without a server.

func TestEarliest_LowestPositiveRequeueWins(t *testing.T) {
	cases := []struct{ a, b, want time.Duration }{
		{0, 0, 0},
		{0, time.Hour, time.Hour},
		{time.Minute, 0, time.Minute},
		{time.Minute, time.Hour, time.Minute},
		{time.Hour, time.Second, time.Second},
	}
	for _, tc := range cases {
		got := earliest(reconcile.Result{RequeueAfter: tc.a}, reconcile.Result{RequeueAfter: tc.b})
		if got.RequeueAfter != tc.want {
			t.Errorf("earliest(%s, %s) = %s, want %s", tc.a, tc.b, got.RequeueAfter, tc.want)
		}
	}
}

func TestServerEnv_CarriesNoSecretsAndOnlyWhatIsSet(t *testing.T) {
	as := &authv1alpha1.AuthService{ObjectMeta: metav1.ObjectMeta{Name: "auth", Namespace: "prod"}}
	as.Spec.Tokens.Leeway = metav1.Duration{Duration: 45 * time.Second}
	as.Spec.Server.LogLevel = "warn"
	env := serverEnv(as, redisConnection{addresses: []string{"r:6379"}}, 0)
	got := map[string]string{}
	for _, e := range env {
		if e.ValueFrom != nil {
			t.Errorf("%s comes from a reference; the password travels as a file", e.Name)
		}
		got[e.Name] = e.Value
	}
	want := map[string]string{
		"AUTHSERVER_LISTEN": ":8080", "AUTHSERVER_ADMIN_LISTEN": ":8081", "AUTHSERVER_KEYS_DIR": "/etc/authserver/keys", "AUTHSERVER_REDIS_ADDRS": "r:6379",
		"AUTHSERVER_LEEWAY": "45s", "AUTHSERVER_COMPAT_STATUS_CODES": "false", "AUTHSERVER_LOG_LEVEL": "warn",
		"AUTHSERVER_ROLE": "verifier", "AUTHSERVER_ISSUER": "http://auth-authserver.prod.svc",
		"AUTHSERVER_TOKEN_SERVICE_URL": "http://auth-issuer.prod.svc",
	}
	if len(got) != len(want) {
		t.Errorf("env = %v, want exactly %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
}

// TestServerEnv_JWKSMaxAgeOnlyBelowTheDefaultPublishTime: the verifier is told the max-age of
// keylifecycle.JWKSMaxAge only when it differs from the server's default, so that at the
// default publish time no variable is added and running pods do not roll.
func TestServerEnv_JWKSMaxAgeOnlyBelowTheDefaultPublishTime(t *testing.T) {
	as := &authv1alpha1.AuthService{ObjectMeta: metav1.ObjectMeta{Name: "auth", Namespace: "prod"}}
	for _, tc := range []struct {
		publish time.Duration
		want    string
	}{
		{0, ""},
		{keylifecycle.DefaultMinPublishTime, ""},
		{time.Hour, ""},
		{time.Second, "1s"},
		{3 * time.Second, "1s"},
		{7 * time.Second, "1s"},
		{time.Minute, "12s"},
		{4*time.Minute + 59*time.Second, "59s"},
	} {
		got, set := envMap(corev1.Container{Env: serverEnv(as, redisConnection{addresses: []string{"r:6379"}}, tc.publish)})["AUTHSERVER_JWKS_MAX_AGE"]
		if got != tc.want || set != (tc.want != "") {
			t.Errorf("publish time %s: AUTHSERVER_JWKS_MAX_AGE = %q (set %v), want %q", tc.publish, got, set, tc.want)
		}
	}
}

func TestAuthserverEnv_TracingEndpointReachesBothRoles(t *testing.T) {
	as := &authv1alpha1.AuthService{ObjectMeta: metav1.ObjectMeta{Name: "auth", Namespace: "prod"}}
	redis := redisConnection{addresses: []string{"r:6379"}}
	for role, env := range map[string][]corev1.EnvVar{"verifier": serverEnv(as, redis, 0), "issuer": issuerEnv(as, redis)} {
		for _, e := range env {
			if e.Name == "AUTHSERVER_OTLP_ENDPOINT" {
				t.Errorf("%s: AUTHSERVER_OTLP_ENDPOINT = %q without spec.server.tracing, want it left out (tracing off)", role, e.Value)
			}
		}
	}
	as.Spec.Server.Tracing.OTLPEndpoint = "http://otel-collector.observability.svc:4318"
	for role, env := range map[string][]corev1.EnvVar{"verifier": serverEnv(as, redis, 0), "issuer": issuerEnv(as, redis)} {
		got := ""
		for _, e := range env {
			if e.Name == "AUTHSERVER_OTLP_ENDPOINT" {
				got = e.Value
			}
		}
		if got != as.Spec.Server.Tracing.OTLPEndpoint {
			t.Errorf("%s: AUTHSERVER_OTLP_ENDPOINT = %q, want %q", role, got, as.Spec.Server.Tracing.OTLPEndpoint)
		}
	}
}

// TestServerEnv_TLSAudiencesAndIntrospection: with spec.server.tls both roles listen for
// HTTPS on 8443 with the mounted certificate, the URLs turn https on port 443, and the
// verifier is told the audiences it enforces, whether aud is required, who may
// introspect and the audience their tokens carry.
func TestServerEnv_TLSAudiencesAndIntrospection(t *testing.T) {
	as := &authv1alpha1.AuthService{ObjectMeta: metav1.ObjectMeta{Name: "auth", Namespace: "prod"}}
	as.Spec.Server.TLS = &authv1alpha1.ServerTLSSpec{SecretName: "auth-tls"}
	as.Spec.Tokens.Audiences = []authv1alpha1.Audience{"api.example.com", "orders"}
	as.Spec.Tokens.RequireAudience = true
	as.Spec.Introspection.Clients = []authv1alpha1.IntrospectionClient{{Namespace: "edge", ServiceAccountName: "gateway"}, {Namespace: "edge", ServiceAccountName: "kong"}}
	redis := redisConnection{addresses: []string{"r:6379"}}
	for role, env := range map[string][]corev1.EnvVar{"verifier": serverEnv(as, redis, 0), "issuer": issuerEnv(as, redis)} {
		got := map[string]string{}
		for _, e := range env {
			got[e.Name] = e.Value
		}
		want := map[string]string{
			"AUTHSERVER_LISTEN": ":8443", "AUTHSERVER_TLS_CERT_FILE": "/etc/authserver/tls/tls.crt", "AUTHSERVER_TLS_KEY_FILE": "/etc/authserver/tls/tls.key",
			"AUTHSERVER_ISSUER": "https://auth-authserver.prod.svc", "AUTHSERVER_AUDIENCES": "api.example.com,orders", "AUTHSERVER_REQUIRE_AUDIENCE": "true",
			"AUTHSERVER_CLIENT_AUDIENCE": "https://auth-authserver.prod.svc",
		}
		if role == "verifier" {
			want["AUTHSERVER_TOKEN_SERVICE_URL"] = "https://auth-issuer.prod.svc"
			want["AUTHSERVER_INTROSPECTION_CLIENTS"] = "edge/gateway,edge/kong"
		} else if _, ok := got["AUTHSERVER_INTROSPECTION_CLIENTS"]; ok {
			t.Errorf("the issuer is given the introspection clients")
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s: %s = %q, want %q", role, k, got[k], v)
			}
		}
	}
	as.Spec.Server.TLS.Port = 8443
	if got := serverURL(as); got != "https://auth-authserver.prod.svc:8443" {
		t.Errorf("serverURL with TLS port 8443 = %s", got)
	}
}

// TestSecretIdentity: the cache of the Secrets AuthServices name keeps what maps a Secret to
// them and tells its versions apart, and nothing else: not the copy of its data that kubectl
// apply leaves in an annotation.
func TestSecretIdentity(t *testing.T) {
	in := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{
		Name: "corp-redis", Namespace: "prod", UID: "uid-1", ResourceVersion: "42", Generation: 1,
		Labels:        map[string]string{"team": "a"},
		Annotations:   map[string]string{"kubectl.kubernetes.io/last-applied-configuration": `{"data":{"pw":"czNjcmV0"}}`},
		ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}},
	}}
	out, err := secretIdentity(in)
	if err != nil {
		t.Fatal(err)
	}
	want := metav1.ObjectMeta{Name: "corp-redis", Namespace: "prod", UID: "uid-1", ResourceVersion: "42"}
	if got := out.(*metav1.PartialObjectMetadata).ObjectMeta; !equality.Semantic.DeepEqual(got, want) {
		t.Errorf("kept %+v, want %+v", got, want)
	}
	if other, _ := secretIdentity("not metadata"); other != "not metadata" {
		t.Errorf("an object of another type became %v", other)
	}
}

func TestIssuer_EmptyClientsTurnIssuanceOff(t *testing.T) {
	as := &authv1alpha1.AuthService{ObjectMeta: metav1.ObjectMeta{Name: "auth", Namespace: "prod"}}
	env := map[string]string{}
	for _, e := range issuerEnv(as, redisConnection{addresses: []string{"r:6379"}}) {
		env[e.Name] = e.Value
	}
	if v, ok := env["AUTHSERVER_ISSUANCE_CLIENTS"]; ok {
		t.Errorf("AUTHSERVER_ISSUANCE_CLIENTS = %q with no clients, want it unset (every caller refused)", v)
	}
	if env["AUTHSERVER_ROLE"] != "issuer" || env["AUTHSERVER_SINGLE_SESSION"] != "false" || env["AUTHSERVER_KEYS_SECRET"] != "auth-signing-keys" || env["AUTHSERVER_NAMESPACE"] != "prod" {
		t.Errorf("issuer env = %v", env)
	}
}
