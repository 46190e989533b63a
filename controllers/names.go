package controllers

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
)

// Labels and annotations that the operator puts on what it creates.
const (
	// ManagedByLabel marks every object the operator creates; the manager caches only those.
	ManagedByLabel = "app.kubernetes.io/managed-by"
	// ManagedByValue is the value of ManagedByLabel.
	ManagedByValue = "auth-operator"
	nameLabel      = "app.kubernetes.io/name"
	instanceLabel  = "app.kubernetes.io/instance"
	componentLabel = "app.kubernetes.io/component"
	// AuthServiceLabel names the AuthService an object belongs to.
	AuthServiceLabel = "auth.hiringo.tech/authservice"
	// AuthServiceNamespaceLabel names the namespace of the AuthService a cluster-scoped
	// object belongs to: it has no namespace of its own and no owner reference.
	AuthServiceNamespaceLabel = "auth.hiringo.tech/authservice-namespace"

	// ClusterResourcesFinalizer on an AuthService holds its deletion until the operator has
	// deleted its cluster-scoped objects (the issuer's ClusterRoleBinding), which the garbage
	// collector cannot: a cluster-scoped object cannot be owned by a namespaced one.
	ClusterResourcesFinalizer = "auth.hiringo.tech/cluster-resources"

	// IssuerClusterRoleName is the ClusterRole that lets an issuer create TokenReviews. It is
	// installed with the operator (config/rbac, the chart, dist/install.yaml) and bound, never
	// written, by the operator: its RBAC may bind this one ClusterRole only.
	IssuerClusterRoleName = "auth-operator-issuer"

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
	// RedisConfigChecksumAnnotation on the Redis pod template is the same digest of the
	// Secret that holds redis.conf.
	RedisConfigChecksumAnnotation = "auth.hiringo.tech/redis-config-checksum"
	// RedisCAChecksumAnnotation on the auth-server pod template is the same digest of the
	// external Redis's CA bundle Secret: the server reads the bundle at start, so a rotated
	// CA must roll the pods.
	RedisCAChecksumAnnotation = "auth.hiringo.tech/redis-tls-ca-checksum"

	// RedisSentinelPasswordChecksumAnnotation on the auth-server pod template is the same
	// digest of the external Sentinels' password Secret.
	RedisSentinelPasswordChecksumAnnotation = "auth.hiringo.tech/redis-sentinel-password-checksum"

	fieldOwner = "auth-operator"
)

// Components, the values of componentLabel.
const (
	componentServer      = "server"
	componentRedis       = "redis"
	componentSigningKeys = "signing-keys"
	componentJWKS        = "jwks"
	componentPublicKeys  = "public-keys"
	componentUserLogouts = "user-logouts"
	componentIssuer      = "issuer"
)

// App names, the values of nameLabel. The issuer's differs from the verifier's so that the
// verifier's selectors (Deployment, Service, PodDisruptionBudget), which cannot change on a
// live Deployment, never reach the issuer's pods.
const (
	appVerifier = "authserver"
	appIssuer   = "authserver-issuer"
	appRedis    = "redis"
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
	redisPort           = 6379
	keysMountPath       = "/etc/authserver/keys"
	issuerServicePort   = 80
	redisPasswordDir    = "/etc/authserver/redis"
	redisPasswordFile   = redisPasswordDir + "/password"
	redisTLSDir         = "/etc/authserver/redis-tls"
	redisConfDir        = "/etc/redis"
	redisDataDir        = "/data"
	// JWKSKey is the ConfigMap data key that holds the JWKS.
	JWKSKey = "jwks.json"
	// RedisPasswordKey is the data key of the managed Redis Secret that holds the password.
	RedisPasswordKey = "password"
	// RedisConfigKey is the data key of the managed Redis Secret that holds redis.conf.
	RedisConfigKey = "redis.conf"
	serverUID      = 65532
	redisUID       = 999
)

// SigningKeysSecretName is the name of the Secret that holds an AuthService's keys.
func SigningKeysSecretName(as *authv1alpha1.AuthService) string { return as.Name + "-signing-keys" }

// JWKSConfigMapName is the name of the ConfigMap that publishes an AuthService's JWKS.
func JWKSConfigMapName(as *authv1alpha1.AuthService) string { return as.Name + "-jwks" }

// PublicKeysSecretName is the name of the Secret holding the public projection of an
// AuthService's keys, which the verifiers mount. The keys are public, but whoever could add
// one could forge tokens every verifier accepts: so it is a Secret, which only who may
// write the private keys' Secret may write, not a ConfigMap. Releases before it kept the
// projection in a ConfigMap of the same name, which the operator deletes.
func PublicKeysSecretName(as *authv1alpha1.AuthService) string { return as.Name + "-public-keys" }

// UserLogoutsConfigMapName is the name of the ConfigMap of administrative user logouts
// (kubectl authsvc logout-user) that the issuer applies.
func UserLogoutsConfigMapName(as *authv1alpha1.AuthService) string { return as.Name + "-user-logouts" }

// IssuerName is the name of the issuer's Deployment, Service, ServiceAccount, Role and
// RoleBinding.
func IssuerName(as *authv1alpha1.AuthService) string { return as.Name + "-issuer" }

// maxClusterRoleBindingName keeps the binding's name a valid label value's length times
// four, well inside what any client or tool prints; a longer one is shortened with a hash.
const maxClusterRoleBindingName = 253

// IssuerClusterRoleBindingName is the name of the ClusterRoleBinding that lets an
// AuthService's issuer create TokenReviews: auth-operator-issuer-<namespace>-<name>, cut
// and suffixed with a hash of the full name when that is too long, so two AuthServices
// never share one.
func IssuerClusterRoleBindingName(as *authv1alpha1.AuthService) string {
	return clusterRoleBindingName(IssuerClusterRoleName, as)
}

// VerifierClusterRoleBindingName is the name of the ClusterRoleBinding that lets an
// AuthService's verifier create TokenReviews while spec.introspection.clients is set:
// auth-operator-verifier-<namespace>-<name>, shortened as the issuer's.
func VerifierClusterRoleBindingName(as *authv1alpha1.AuthService) string {
	return clusterRoleBindingName("auth-operator-verifier", as)
}

func clusterRoleBindingName(prefix string, as *authv1alpha1.AuthService) string {
	full := prefix + "-" + as.Namespace + "-" + as.Name
	if len(full) <= maxClusterRoleBindingName {
		return full
	}
	sum := sha256.Sum256([]byte(as.Namespace + "/" + as.Name))
	suffix := "-" + hex.EncodeToString(sum[:])[:16]
	return full[:maxClusterRoleBindingName-len(suffix)] + suffix
}

// RedisName is the name of the managed Redis Secret, workload, Service and NetworkPolicy.
func RedisName(as *authv1alpha1.AuthService) string { return as.Name + "-redis" }

// ServerName is the name of the auth-server Deployment, Service and PodDisruptionBudget.
func ServerName(as *authv1alpha1.AuthService) string { return as.Name + "-authserver" }

func redisServiceAddress(as *authv1alpha1.AuthService) string {
	return fmt.Sprintf("%s.%s.svc:%d", RedisName(as), as.Namespace, redisPort)
}

func serverURL(as *authv1alpha1.AuthService) string {
	scheme, port := servicePort(as, as.Spec.Server.Port)
	return serviceURL(scheme, ServerName(as), as.Namespace, port)
}

// issuerURL is the in-cluster URL of the issuer's Service.
func issuerURL(as *authv1alpha1.AuthService) string {
	scheme, port := servicePort(as, issuerServicePort)
	return serviceURL(scheme, IssuerName(as), as.Namespace, port)
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

// labels are the labels of an object of one part of an AuthService.
func labels(as *authv1alpha1.AuthService, name, component string) map[string]string {
	return map[string]string{
		ManagedByLabel:   ManagedByValue,
		nameLabel:        name,
		instanceLabel:    as.Name,
		componentLabel:   component,
		AuthServiceLabel: as.Name,
	}
}

// selector is the stable subset of labels that selects an AuthService's pods of one kind.
func selector(as *authv1alpha1.AuthService, name string) map[string]string {
	return map[string]string{nameLabel: name, instanceLabel: as.Name}
}
