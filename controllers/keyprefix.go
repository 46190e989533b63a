package controllers

import (
	"fmt"

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
