package serverenv

import (
	"slices"
	"strings"
)

// Prefix starts the name of every variable.
const Prefix = "AUTHSERVER_"

// The variables of authserver serve; each sets the flag Flag names (docs/authserver-flags.md).
const (
	Role                      = "AUTHSERVER_ROLE"
	Listen                    = "AUTHSERVER_LISTEN"
	TLSCertFile               = "AUTHSERVER_TLS_CERT_FILE"
	TLSKeyFile                = "AUTHSERVER_TLS_KEY_FILE"
	AdminListen               = "AUTHSERVER_ADMIN_LISTEN"
	KeysDir                   = "AUTHSERVER_KEYS_DIR"
	RedisAddrs                = "AUTHSERVER_REDIS_ADDRS"
	RedisMode                 = "AUTHSERVER_REDIS_MODE"
	RedisMasterName           = "AUTHSERVER_REDIS_MASTER_NAME"
	RedisSentinelUsername     = "AUTHSERVER_REDIS_SENTINEL_USERNAME"
	RedisSentinelPasswordFile = "AUTHSERVER_REDIS_SENTINEL_PASSWORD_FILE"
	RedisUsername             = "AUTHSERVER_REDIS_USERNAME"
	RedisPasswordFile         = "AUTHSERVER_REDIS_PASSWORD_FILE"
	RedisDB                   = "AUTHSERVER_REDIS_DB"
	RedisTLS                  = "AUTHSERVER_REDIS_TLS"
	RedisTLSCAFile            = "AUTHSERVER_REDIS_TLS_CA_FILE"
	RedisTLSServerName        = "AUTHSERVER_REDIS_TLS_SERVER_NAME"
	RedisKeyPrefix            = "AUTHSERVER_REDIS_KEY_PREFIX"
	RedisMinReplicasAcked     = "AUTHSERVER_REDIS_MIN_REPLICAS_ACKED"
	SessionCapacity           = "AUTHSERVER_SESSION_CAPACITY"
	Leeway                    = "AUTHSERVER_LEEWAY"
	MaxTokenBytes             = "AUTHSERVER_MAX_TOKEN_BYTES"
	CORSOrigins               = "AUTHSERVER_CORS_ORIGINS"
	CompatStatusCodes         = "AUTHSERVER_COMPAT_STATUS_CODES"
	JWKSMaxAge                = "AUTHSERVER_JWKS_MAX_AGE"
	VerifyCacheSize           = "AUTHSERVER_VERIFY_CACHE_SIZE"
	AccessLifetime            = "AUTHSERVER_ACCESS_LIFETIME"
	RefreshLifetime           = "AUTHSERVER_REFRESH_LIFETIME"
	SessionMaxLifetime        = "AUTHSERVER_SESSION_MAX_LIFETIME"
	RefreshGracePeriod        = "AUTHSERVER_REFRESH_GRACE_PERIOD"
	RefreshesPerMinute        = "AUTHSERVER_REFRESHES_PER_MINUTE"
	Issuer                    = "AUTHSERVER_ISSUER"
	Audiences                 = "AUTHSERVER_AUDIENCES"
	RequireAudience           = "AUTHSERVER_REQUIRE_AUDIENCE"
	IssuanceClients           = "AUTHSERVER_ISSUANCE_CLIENTS"
	IntrospectionClients      = "AUTHSERVER_INTROSPECTION_CLIENTS"
	ClientAudience            = "AUTHSERVER_CLIENT_AUDIENCE"
	TokenServiceURL           = "AUTHSERVER_TOKEN_SERVICE_URL"
	SingleSession             = "AUTHSERVER_SINGLE_SESSION"
	KeysSecret                = "AUTHSERVER_KEYS_SECRET"
	UserLogoutsConfigMap      = "AUTHSERVER_USER_LOGOUTS_CONFIGMAP"
	StoreStateConfigMap       = "AUTHSERVER_STORE_STATE_CONFIGMAP"
	Namespace                 = "AUTHSERVER_NAMESPACE"
	Kubeconfig                = "AUTHSERVER_KUBECONFIG"
	OTLPEndpoint              = "AUTHSERVER_OTLP_ENDPOINT"
	LogLevel                  = "AUTHSERVER_LOG_LEVEL"
	ShutdownDelay             = "AUTHSERVER_SHUTDOWN_DELAY"
	ShutdownTimeout           = "AUTHSERVER_SHUTDOWN_TIMEOUT"
)

// The values of Role.
const (
	RoleVerifier = "verifier"
	RoleIssuer   = "issuer"
)

// Serve lists every variable of authserver serve, in the order of its flags.
var Serve = []string{
	Role, Listen, TLSCertFile, TLSKeyFile, AdminListen, KeysDir,
	RedisAddrs, RedisMode, RedisMasterName, RedisSentinelUsername, RedisSentinelPasswordFile,
	RedisUsername, RedisPasswordFile, RedisDB, RedisTLS, RedisTLSCAFile, RedisTLSServerName,
	RedisKeyPrefix, RedisMinReplicasAcked, SessionCapacity,
	Leeway, MaxTokenBytes, CORSOrigins, CompatStatusCodes, JWKSMaxAge, VerifyCacheSize,
	AccessLifetime, RefreshLifetime, SessionMaxLifetime, RefreshGracePeriod, RefreshesPerMinute,
	Issuer, Audiences, RequireAudience, IssuanceClients, IntrospectionClients, ClientAudience,
	TokenServiceURL, SingleSession, KeysSecret, UserLogoutsConfigMap, StoreStateConfigMap,
	Namespace, Kubeconfig, OTLPEndpoint, LogLevel, ShutdownDelay, ShutdownTimeout,
}

// Flag is the flag that variable name sets: AUTHSERVER_REDIS_ADDRS sets --redis-addrs.
func Flag(name string) string {
	return strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(name, Prefix), "_", "-"))
}

// Var is the variable that sets flag, by the rule Flag inverts.
func Var(flag string) string {
	return Prefix + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// Unknown returns the names of environ's AUTHSERVER_* variables ("NAME=value" entries, as
// os.Environ gives them) that known does not list, sorted.
func Unknown(environ, known []string) []string {
	var out []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, Prefix) && !slices.Contains(known, name) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
