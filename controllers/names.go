package controllers

import (
	"fmt"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
)

// The finalizer and the annotations of the operator.
const (
	// ClusterResourcesFinalizer on an AuthService holds its deletion until the operator has
	// deleted its cluster-scoped objects (the issuer's ClusterRoleBinding), which the garbage
	// collector cannot: a cluster-scoped object cannot be owned by a namespaced one.
	ClusterResourcesFinalizer = "auth.hiringo.tech/cluster-resources"

	// LastRotationRequestAnnotation on the signing-key Secret records the last value of the
	// rotate annotation acted on, written together with the keys so a restart never repeats it.
	LastRotationRequestAnnotation = "auth.hiringo.tech/last-rotation-request"
	// KeysLostAnnotation on the signing-key Secret names the key that signed when the Secret
	// was deleted by hand; it stays until the next rotation.
	KeysLostAnnotation = "auth.hiringo.tech/keys-lost"
	// RedisPasswordChecksumAnnotation on the auth-server pod template is a digest of the UID
	// and resourceVersion of the Redis password's Secret (never of the password), so a new
	// password rolls the pods.
	RedisPasswordChecksumAnnotation = "auth.hiringo.tech/redis-password-checksum"
	// RedisCAChecksumAnnotation on the auth-server pod template is the same digest of the
	// external Redis's CA bundle Secret: the server reads the bundle at start, so a rotated
	// CA must roll the pods.
	RedisCAChecksumAnnotation = "auth.hiringo.tech/redis-tls-ca-checksum"

	// RedisSentinelPasswordChecksumAnnotation on the auth-server pod template is the same
	// digest of the external Sentinels' password Secret.
	RedisSentinelPasswordChecksumAnnotation = "auth.hiringo.tech/redis-sentinel-password-checksum"

	fieldOwner = "auth-operator"
)

// Components, the values of objects.ComponentLabel.
const (
	componentServer      = "server"
	componentSigningKeys = "signing-keys"
	componentJWKS        = "jwks"
	componentPublicKeys  = "public-keys"
	componentUserLogouts = "user-logouts"
	componentIssuer      = "issuer"
)

// Fixed ports and paths of the containers.
const (
	serverContainerPort = 8080
	// serverTLSPort is the container port of the API with spec.server.tls.
	serverTLSPort = 8443
	// defaultTLSServicePort is the Services' HTTPS port when spec.server.tls.port is unset.
	defaultTLSServicePort int32 = 443
	tlsMountPath                = "/etc/authserver/tls"
	// serverAdminPort serves /healthz, /readyz and /metrics: the probes and Prometheus use
	// it, no Service exposes it.
	serverAdminPort     = 8081
	serverAdminPortName = "admin"
	keysMountPath       = "/etc/authserver/keys"
	issuerServicePort   = 80
	redisPasswordDir    = "/etc/authserver/redis"
	redisPasswordFile   = redisPasswordDir + "/password"
	redisTLSDir         = "/etc/authserver/redis-tls"
	sentinelPasswordDir = "/etc/authserver/redis-sentinel"
	// sentinelPasswordFile is where the auth servers find the Sentinels' password.
	sentinelPasswordFile = sentinelPasswordDir + "/password"
	// JWKSKey is the ConfigMap data key that holds the JWKS.
	JWKSKey   = "jwks.json"
	serverUID = 65532
)

func serverURL(as *authv1alpha1.AuthService) string {
	scheme, port := servicePort(as, as.Spec.Server.Port)
	return serviceURL(scheme, as.ServerName(), as.Namespace, port)
}

// issuerURL is the in-cluster URL of the issuer's Service.
func issuerURL(as *authv1alpha1.AuthService) string {
	scheme, port := servicePort(as, issuerServicePort)
	return serviceURL(scheme, as.IssuerName(), as.Namespace, port)
}

// servicePort is the scheme and port of an auth-server Service whose plain HTTP port is
// httpPort: HTTPS on spec.server.tls.port (443 by default) with spec.server.tls.
func servicePort(as *authv1alpha1.AuthService, httpPort int32) (string, int32) {
	if t := as.Spec.Server.TLS; t != nil {
		if t.Port == 0 {
			return "https", defaultTLSServicePort
		}
		return "https", t.Port
	}
	if httpPort == 0 {
		httpPort = defaultServerPort
	}
	return "http", httpPort
}

// serviceURL is the in-cluster URL of Service name, without the scheme's default port.
func serviceURL(scheme, name, namespace string, port int32) string {
	if (scheme == "http" && port == 80) || (scheme == "https" && port == 443) {
		return fmt.Sprintf("%s://%s.%s.svc", scheme, name, namespace)
	}
	return fmt.Sprintf("%s://%s.%s.svc:%d", scheme, name, namespace, port)
}

// tokenIssuer is the iss of the tokens the AuthService issues: the spec's, or the
// verifier's in-cluster URL, where its discovery document is served.
func tokenIssuer(as *authv1alpha1.AuthService) string {
	if as.Spec.Tokens.Issuer != "" {
		return as.Spec.Tokens.Issuer
	}
	return serverURL(as)
}
