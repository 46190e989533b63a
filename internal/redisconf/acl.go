package redisconf

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// The ACL users of the managed Redis. The default user (requirepass, the Secret's password)
// is the administrator: only the Redis pods hold it, for replication and their probes.
const (
	// AuthServerUser is what the auth servers log in to Redis and to the Sentinels as.
	AuthServerUser = "authserver"
	// SentinelUser is what the Sentinels log in to Redis as, to monitor and reconfigure it.
	SentinelUser = "sentinel"
)

// authServerCommands are every command the auth servers send to Redis, directly or from
// their scripts (a script's commands are checked against the caller's rights too): the
// session store, its pub/sub, WAIT for the replicas' acknowledgements, and INFO and
// DBSIZE for the version check and the memory metrics. CONFIG is not among them: CONFIG
// GET would show requirepass, so the eviction-policy check is refused and logged at info
// (the operator writes noeviction itself). Nothing here touches a key outside the prefix,
// reconfigures, flushes or shuts Redis down.
var authServerCommands = []string{
	// connection
	"auth", "hello", "ping",
	// the store's reads and its scripts' commands
	"get", "mget", "set", "exists", "pexpiretime", "time",
	"zadd", "zscore", "zrangebyscore", "zremrangebyscore",
	"eval", "evalsha",
	// revocations to the other replicas
	"publish", "subscribe", "unsubscribe",
	// acknowledgements and checks
	"wait", "info", "dbsize",
}

// sentinelCommands are what a Sentinel sends to the Redis it monitors, as Redis documents
// for a Sentinel's ACL user: monitoring (PING, INFO, ROLE), its hello messages on
// __sentinel__:hello, and a failover's reconfiguration in a transaction.
var sentinelCommands = []string{
	"auth", "hello", "ping", "info", "role",
	"subscribe", "publish",
	"multi", "exec", "slaveof", "replicaof", "config|rewrite",
	"client|setname", "client|kill", "script|kill",
}

// sentinelClientCommands are what the auth servers (and a Redis pod's start gate) may ask
// a Sentinel: which primary it names, its replicas and its peers, and the +switch-master
// events. Not SENTINEL SET, REMOVE, MONITOR, FAILOVER or CONFIG, which reconfigure it.
var sentinelClientCommands = []string{
	"auth", "hello", "ping",
	"sentinel|get-master-addr-by-name", "sentinel|replicas", "sentinel|slaves", "sentinel|sentinels",
	"subscribe", "psubscribe", "unsubscribe", "punsubscribe",
}

// ValidateKeyPrefix accepts a key prefix that an ACL key and channel pattern can hold as it
// is: printable ASCII without spaces or the glob characters *, ?, [, ] and \.
func ValidateKeyPrefix(prefix string) error {
	if prefix == "" {
		return fmt.Errorf("empty key prefix: the auth servers' user would reach every key")
	}
	for i := 0; i < len(prefix); i++ {
		c := prefix[i]
		if c <= ' ' || c > '~' || strings.IndexByte(`*?[]\"'`, c) >= 0 {
			return fmt.Errorf("key prefix %q: character %d is not allowed in an ACL pattern", prefix, i+1)
		}
	}
	return nil
}

// Users are the passwords of the managed Redis's ACL users and the auth servers' key
// prefix, which bounds their user.
type Users struct {
	// AuthServer is the auth servers' password.
	AuthServer string
	// Sentinel is the Sentinels' password, "" for a Redis without Sentinels.
	Sentinel string
	// KeyPrefix is every key's and the revocation channel's prefix.
	KeyPrefix string
}

// RenderUsers are the redis.conf lines that define the ACL users: the auth servers may run
// authServerCommands on keys and channels under the prefix only, a Sentinel
// sentinelCommands on its hello channel. Passwords are written as their SHA-256, so
// redis.conf holds no password but the administrator's.
func RenderUsers(u Users) (string, error) {
	if err := ValidatePassword(u.AuthServer); err != nil {
		return "", fmt.Errorf("the auth servers' password: %w", err)
	}
	if err := ValidateKeyPrefix(u.KeyPrefix); err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "user %s on #%s resetkeys ~%s* resetchannels &%s* %s\n",
		AuthServerUser, passwordHash(u.AuthServer), u.KeyPrefix, u.KeyPrefix, allowOnly(authServerCommands))
	if u.Sentinel != "" {
		if err := ValidatePassword(u.Sentinel); err != nil {
			return "", fmt.Errorf("the Sentinels' password: %w", err)
		}
		fmt.Fprintf(&b, "user %s on #%s resetkeys resetchannels &__sentinel__:hello %s\n",
			SentinelUser, passwordHash(u.Sentinel), allowOnly(sentinelCommands))
	}
	return b.String(), nil
}

// RenderSentinelUsers are the sentinel.conf lines that define the Sentinels' users: the
// default user, their administrator, with the Sentinels' own password and the Redis
// administrator's (so that auth servers and Sentinels not yet rolled to the ACL users keep
// working during an upgrade; who holds the Redis administrator's password holds the data
// anyway), and the auth servers' user (sentinelClientCommands; every channel, a Sentinel's
// events being its only channels). Passwords are written as their SHA-256.
func RenderSentinelUsers(authServer, sentinel, admin string) (string, error) {
	for what, p := range map[string]string{"auth servers'": authServer, "Sentinels'": sentinel, "administrator's": admin} {
		if err := ValidatePassword(p); err != nil {
			return "", fmt.Errorf("%s password: %w", what, err)
		}
	}
	return fmt.Sprintf("user default on #%s #%s ~* &* +@all\nuser %s on #%s allchannels %s\n",
		passwordHash(sentinel), passwordHash(admin), AuthServerUser, passwordHash(authServer), allowOnly(sentinelClientCommands)), nil
}

// allowOnly is the ACL rule that allows exactly commands.
func allowOnly(commands []string) string {
	return "-@all +" + strings.Join(commands, " +")
}

// passwordHash is the hex SHA-256 of a password, as ACL rules take it after '#'.
func passwordHash(p string) string {
	sum := sha256.Sum256([]byte(p))
	return hex.EncodeToString(sum[:])
}
