package v1alpha1

import (
	"crypto/sha256"
	"encoding/hex"
)

// The names of the objects the operator makes for an AuthService, derived from its name
// alone: the operator, the auth server's configuration, kubectl authsvc and the tests all
// take them from here.

// AuthServiceLabel on every object the operator makes for an AuthService names it.
const AuthServiceLabel = "auth.hiringo.tech/authservice"

// AuthServiceNamespaceLabel names the namespace of the AuthService a cluster-scoped object
// belongs to: it has no namespace of its own and no owner reference.
const AuthServiceNamespaceLabel = "auth.hiringo.tech/authservice-namespace"

// IssuerClusterRoleName is the ClusterRole that lets an issuer create TokenReviews. It is
// installed with the operator (config/rbac, the chart, dist/install.yaml) and bound, never
// written, by the operator: its RBAC may bind this one ClusterRole only.
const IssuerClusterRoleName = "auth-operator-issuer"

// SigningKeysSecretName is the Secret that holds the keys; the issuer mounts it.
func (as *AuthService) SigningKeysSecretName() string { return as.Name + "-signing-keys" }

// JWKSConfigMapName is the ConfigMap that publishes the JWKS.
func (as *AuthService) JWKSConfigMapName() string { return as.Name + "-jwks" }

// PublicKeysSecretName is the Secret holding the public projection of the keys, which the
// verifiers mount. The keys are public, but whoever could add one could forge tokens every
// verifier accepts: so it is a Secret, which only who may write the private keys' Secret may
// write, not a ConfigMap. Releases before it kept the projection in a ConfigMap of the same
// name, which the operator deletes.
func (as *AuthService) PublicKeysSecretName() string { return as.Name + "-public-keys" }

// UserLogoutsConfigMapName is the ConfigMap of administrative user logouts (kubectl authsvc
// logout-user) that the issuer applies.
func (as *AuthService) UserLogoutsConfigMapName() string { return as.Name + "-user-logouts" }

// StoreStateConfigMapName is the ConfigMap in which the issuer records the generation of the
// blacklist store and when it found the store had lost its data (the StoreState* data keys).
func (as *AuthService) StoreStateConfigMapName() string { return as.Name + "-store-state" }

// The data keys of the store-state ConfigMap, all strings: the issuer writes them and the
// operator's BlacklistIntact condition reads them.
const (
	// StoreStateGenerationKey is the store generation the issuer holds.
	StoreStateGenerationKey = "generation"
	// StoreStateLostAtKey is the RFC 3339 time the last loss was detected, "" when never.
	StoreStateLostAtKey = "lostAt"
	// StoreStatePreviousGenerationKey is the generation that was lost, "" when never.
	StoreStatePreviousGenerationKey = "previousGeneration"
	// StoreStateNotBeforeKey is the RFC 3339 cutoff: tokens issued before it are refused,
	// "" when none.
	StoreStateNotBeforeKey = "notBefore"
)

// ServerName is the verifier's Deployment, Service, PodDisruptionBudget and (with
// spec.introspection.clients) ServiceAccount.
func (as *AuthService) ServerName() string { return as.Name + "-authserver" }

// IssuerName is the issuer's Deployment, Service, ServiceAccount, Role, RoleBinding and
// PodDisruptionBudget.
func (as *AuthService) IssuerName() string { return as.Name + "-issuer" }

// RedisName is the managed Redis's Secret, workload, Service, NetworkPolicy and (replicated)
// PodDisruptionBudget.
func (as *AuthService) RedisName() string { return as.Name + "-redis" }

// RedisHeadlessName is the headless Service that gives every Redis and Sentinel pod of a
// replicated managed Redis its stable DNS name.
func (as *AuthService) RedisHeadlessName() string { return as.Name + "-redis-headless" }

// RedisSentinelName is the Sentinels' StatefulSet, Service and PodDisruptionBudget.
func (as *AuthService) RedisSentinelName() string { return as.Name + "-redis-sentinel" }

// maxClusterRoleBindingName keeps a binding's name a valid label value's length times four,
// well inside what any client or tool prints; a longer one is shortened with a hash.
const maxClusterRoleBindingName = 253

// IssuerClusterRoleBindingName is the ClusterRoleBinding that lets the issuer create
// TokenReviews: auth-operator-issuer-<namespace>-<name>, cut and suffixed with a hash of the
// full name when that is too long, so two AuthServices never share one.
func (as *AuthService) IssuerClusterRoleBindingName() string {
	return as.clusterRoleBindingName(IssuerClusterRoleName)
}

// VerifierClusterRoleBindingName is the ClusterRoleBinding that lets the verifier create
// TokenReviews while spec.introspection.clients is set: auth-operator-verifier-<namespace>-<name>,
// shortened as the issuer's.
func (as *AuthService) VerifierClusterRoleBindingName() string {
	return as.clusterRoleBindingName("auth-operator-verifier")
}

func (as *AuthService) clusterRoleBindingName(prefix string) string {
	full := prefix + "-" + as.Namespace + "-" + as.Name
	if len(full) <= maxClusterRoleBindingName {
		return full
	}
	sum := sha256.Sum256([]byte(as.Namespace + "/" + as.Name))
	suffix := "-" + hex.EncodeToString(sum[:])[:16]
	return full[:maxClusterRoleBindingName-len(suffix)] + suffix
}

// ReferencedSecretNames are the Secrets of the AuthService's namespace that its spec names,
// which the user owns: spec.server.tls.secretName and spec.redis.external's password,
// Sentinel password and CA bundle. The operator watches them.
func (as *AuthService) ReferencedSecretNames() []string {
	var names []string
	if t := as.Spec.Server.TLS; t != nil {
		names = append(names, t.SecretName)
	}
	if ext := as.Spec.Redis.External; ext != nil {
		refs := []*SecretKeyReference{ext.PasswordSecretRef, ext.SentinelPasswordSecretRef}
		if ext.TLS != nil {
			refs = append(refs, ext.TLS.CASecretRef)
		}
		for _, ref := range refs {
			if ref != nil {
				names = append(names, ref.Name)
			}
		}
	}
	return names
}
