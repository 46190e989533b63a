package controllers

import (
	"fmt"
	"strings"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
)

// legacyRedisKeyPrefix is the prefix every AuthService's auth servers used before prefixes
// were derived per AuthService (the server's own --redis-key-prefix default).
const legacyRedisKeyPrefix = "authserver:"

// recordRedisKeyPrefix fills status.redisKeyPrefix once: derived from the AuthService's
// namespace, name and UID, so two AuthServices on one Redis never share blacklist entries or
// revocations, and one re-created under the same name starts afresh. An AuthService that
// already ran (it has an active key) without a recorded prefix keeps the shared one its
// servers have written under: switching would forget every logout they stored.
func recordRedisKeyPrefix(as *authv1alpha1.AuthService) {
	if as.Status.RedisKeyPrefix != "" {
		return
	}
	if as.Status.ActiveKeyID != "" {
		as.Status.RedisKeyPrefix = legacyRedisKeyPrefix
		return
	}
	as.Status.RedisKeyPrefix = derivedRedisKeyPrefix(as)
}

// derivedRedisKeyPrefix is "authserver:<namespace>.<name>.<uid>:". Namespaces and names
// are DNS labels, so the dots cannot be confused with theirs.
func derivedRedisKeyPrefix(as *authv1alpha1.AuthService) string {
	return fmt.Sprintf("%s%s.%s.%s:", legacyRedisKeyPrefix, as.Namespace, as.Name, as.UID)
}

// redisKeyPrefix is the prefix the auth servers use: spec.redis.keyPrefix when set, else the
// recorded one.
func redisKeyPrefix(as *authv1alpha1.AuthService) string {
	if as.Spec.Redis.KeyPrefix != "" {
		return as.Spec.Redis.KeyPrefix
	}
	return as.Status.RedisKeyPrefix
}

// keyPrefixProblem says what is wrong with spec.redis.keyPrefix, or "" when it is unset or
// fine. The CRD checks its form, authserver:<namespace>.<id>:; the namespace, which a CRD
// rule cannot see, is checked here: a prefix of another namespace would share that
// tenant's blacklist and revocations on a Redis both use.
func keyPrefixProblem(as *authv1alpha1.AuthService) string {
	p := as.Spec.Redis.KeyPrefix
	if p == "" {
		return ""
	}
	if strings.HasPrefix(p, legacyRedisKeyPrefix+as.Namespace+".") {
		return ""
	}
	return fmt.Sprintf("spec.redis.keyPrefix %q is not in this AuthService's key space: it must start with %s%s. (its namespace), so that no tenant shares another's blacklist; "+
		"copy status.redisKeyPrefix of the AuthService whose blacklist it should keep, or remove the field", p, legacyRedisKeyPrefix, as.Namespace)
}
