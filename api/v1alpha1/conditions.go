package v1alpha1

// Condition types of an AuthService.
const (
	// ReadyCondition is True when keys, Redis, the verifier and the issuer are all ready.
	ReadyCondition = "Ready"
	// KeysReadyCondition is True when the signing-key Secret and the JWKS are published.
	KeysReadyCondition = "KeysReady"
	// RedisReadyCondition is True when the blacklist store is available.
	RedisReadyCondition = "RedisReady"
	// ServerReadyCondition is True when the verifier Deployment is available.
	ServerReadyCondition = "ServerReady"
	// IssuerReadyCondition is True when the issuer Deployment is available.
	IssuerReadyCondition = "IssuerReady"
	// TLSReadyCondition is True when spec.server.tls names a usable, valid serving
	// certificate, or when it is not set (plain HTTP). False names the Secret and what is
	// wrong; the pods keep serving the last good certificate meanwhile.
	TLSReadyCondition = "TLSReady"
	// BlacklistIntactCondition is False when the issuer found that the blacklist store lost
	// its data: tokens issued before the loss are refused until they expire. It does not
	// change Ready, as new logins work.
	BlacklistIntactCondition = "BlacklistIntact"
)

// Condition reasons of an AuthService.
const (
	// ReasonReady says everything the condition covers is in place.
	ReasonReady = "Ready"
	// ReasonKeysPublished says the signing keys and the JWKS are published.
	ReasonKeysPublished = "KeysPublished"
	// ReasonSecretRecreated says the signing-key Secret was deleted and recreated with new keys.
	ReasonSecretRecreated = "SecretRecreated"
	// ReasonSecretInvalid says the signing-key Secret does not parse and was left untouched.
	ReasonSecretInvalid = "SecretInvalid"
	// ReasonReconcileFailed says the operator could not write the objects of the condition.
	ReasonReconcileFailed = "ReconcileFailed"
	// ReasonExternalRedis says the blacklist is on a Redis the user runs.
	ReasonExternalRedis = "ExternalRedis"
	// ReasonRedisSecretUnusable says a Secret the external Redis spec names cannot be used:
	// missing, without the key, or (with --require-secret-use-label) without the label. The
	// message is the same in every case, so it does not tell whether a Secret exists.
	ReasonRedisSecretUnusable = "RedisSecretUnusable"
	// ReasonRedisPasswordInvalid says the managed Redis Secret's password cannot be written
	// into redis.conf safely; the running Redis is left as it is.
	ReasonRedisPasswordInvalid = "RedisPasswordInvalid"
	// ReasonKeyPrefixInvalid says spec.redis.keyPrefix names another namespace's key space.
	ReasonKeyPrefixInvalid = "KeyPrefixInvalid"
	// EventObjectTampered says an object the operator created had lost its labels or owner
	// reference by hand and was restored.
	EventObjectTampered = "ObjectTampered"
	// ReasonForeignObject says an object the operator would create already exists and is not
	// this AuthService's: the operator does not take it over.
	ReasonForeignObject = "ForeignObject"
	// ReasonProgressing says the workload is rolling out.
	ReasonProgressing = "Progressing"
	// ReasonUnavailable says the workload has fewer available replicas than desired.
	ReasonUnavailable = "Unavailable"
	// ReasonNotReady says at least one other condition is not True.
	ReasonNotReady = "NotReady"
	// ReasonIntact says the blacklist store holds every entry of its generation.
	ReasonIntact = "Intact"
	// ReasonStoreDataLost says the blacklist store lost its data (restart without
	// persistence, FLUSHALL, failover to an empty node, an old snapshot).
	ReasonStoreDataLost = "StoreDataLost"
	// ReasonNotReported says the issuer has not yet recorded the store's state.
	ReasonNotReported = "NotReported"
	// ReasonPending says no pass has reconciled the condition's part yet.
	ReasonPending = "Pending"
	// ReasonWaitingForRedis says a workload is not rolled out until the Redis settings are
	// complete.
	ReasonWaitingForRedis = "WaitingForRedis"
	// ReasonNoImage says no image is known for a workload: neither the spec nor the
	// operator's flags name one.
	ReasonNoImage = "NoImage"
	// ReasonPlainHTTP says spec.server.tls is not set: both roles serve plain HTTP.
	ReasonPlainHTTP = "PlainHTTP"
	// ReasonCertificateValid says the serving certificate is usable and valid now.
	ReasonCertificateValid = "CertificateValid"
	// ReasonTLSSecretUnusable says the Secret spec.server.tls names cannot be used: missing,
	// without tls.crt and tls.key, or (with --require-secret-use-label) without the label.
	ReasonTLSSecretUnusable = "TLSSecretUnusable"
	// ReasonCertificateInvalid says the Secret's certificate does not load (not PEM, or
	// not matching its key), has expired or is not valid yet.
	ReasonCertificateInvalid = "CertificateInvalid"
	// ReasonWaitingForTLS says a workload is not rolled out until its TLS Secret is usable.
	ReasonWaitingForTLS = "WaitingForTLS"
)

// Event reasons of an AuthService, besides the condition reasons above that events share
// (ReasonSecretInvalid, ReasonSecretRecreated, ReasonReconcileFailed, ReasonForeignObject,
// ReasonRedisPasswordInvalid).
const (
	// EventKeyCreated says new signing keys were published.
	EventKeyCreated = "KeyCreated"
	// EventKeyRotated says a new key signs.
	EventKeyRotated = "KeyRotated"
	// EventKeyRevoked says a key named in spec.signingKeys.revokedKeyIDs was withdrawn.
	EventKeyRevoked = "KeyRevoked"
	// EventKeyExpired says a retired key was deleted after its last token expired.
	EventKeyExpired = "KeyExpired"
	// EventKeyUnpublished says a retired key left the JWKS; the issuer still holds it.
	EventKeyUnpublished = "KeyUnpublished"
)
