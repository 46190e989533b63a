package redisconf

import (
	"fmt"
	"net"
	"strings"
	"time"
)

// SentinelPort is the port every managed Sentinel listens on.
const SentinelPort = 26379

// Sentinel timings of the managed Redis. A primary that does not answer for DownAfter is
// subjectively down; once a quorum agrees, a failover starts, and one that has not
// finished in FailoverTimeout is retried by another Sentinel. They are the timings the
// auth server's failover window was measured with (docs/high-availability.md): a longer
// pause of the primary causes a failover, which with WAIT loses no acknowledged logout.
const (
	DownAfter       = time.Second
	FailoverTimeout = 5 * time.Second
)

// ReplicaSettings are what a Redis of a replicated managed Redis adds to redis.conf.
type ReplicaSettings struct {
	// Password authenticates the replica to its primary (masterauth); it is the same as
	// requirepass.
	Password string
	// AnnounceHost is the pod's stable DNS name, which the Sentinels and the other
	// replicas use instead of its changing IP.
	AnnounceHost string
	// AnnouncePort is the port it listens on.
	AnnouncePort int
	// Primary is the host:port to replicate, or "" when this Redis is the primary.
	Primary string
}

// RenderReplica appends the replication settings to base (a redis.conf from Render). The
// file it makes is the Redis's own writable copy: a Sentinel rewrites replicaof in it
// (CONFIG REWRITE) when it reconfigures the node.
func RenderReplica(base string, s ReplicaSettings) (string, error) {
	if err := ValidatePassword(s.Password); err != nil {
		return "", err
	}
	if err := validateHost(s.AnnounceHost); err != nil {
		return "", fmt.Errorf("announce host: %w", err)
	}
	var b strings.Builder
	b.WriteString(base)
	if base != "" && !strings.HasSuffix(base, "\n") {
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "masterauth %s\nreplica-announce-ip %s\nreplica-announce-port %d\n", s.Password, s.AnnounceHost, s.AnnouncePort)
	// A primary that restarted from its AOF has a new replication ID, so its replicas sync in
	// full. Diskless sync by default waits 5 s for more replicas before it starts, and until a
	// replica has synced every logout's WAIT fails: start at once.
	b.WriteString("repl-diskless-sync-delay 0\n")
	if s.Primary != "" {
		host, port, err := splitHostPort(s.Primary)
		if err != nil {
			return "", fmt.Errorf("primary: %w", err)
		}
		fmt.Fprintf(&b, "replicaof %s %s\n", host, port)
	}
	return b.String(), nil
}

// SentinelSettings are the contents of a managed Sentinel's sentinel.conf.
type SentinelSettings struct {
	// MasterName is the name the auth servers ask the Sentinels for.
	MasterName string
	// Primary is the host:port of the Redis to monitor as the primary.
	Primary string
	// Quorum is how many Sentinels must agree that the primary is down.
	Quorum int
	// Password is the Sentinels' own requirepass, what they send to each other
	// (sentinel-pass) and what they send to Redis (auth-pass) as RedisUsername.
	Password string
	// RedisUsername is the ACL user the Sentinels log in to Redis as (auth-user); "" for
	// Redis's default user.
	RedisUsername string
	// Users are ACL user lines (RenderSentinelUsers): the Sentinels' clients and, when
	// they state it, the default user in place of requirepass Password.
	Users string
	// AnnounceHost is the Sentinel pod's stable DNS name, announced to the others.
	AnnounceHost string
	// Port is the port the Sentinel listens on.
	Port int
	// DownAfter and FailoverTimeout are the failover timings.
	DownAfter, FailoverTimeout time.Duration
}

// RenderSentinel is a sentinel.conf. Hostnames are resolved and announced, so that a pod
// that comes back with another IP is still the same instance to every Sentinel.
func RenderSentinel(s SentinelSettings) (string, error) {
	if err := ValidatePassword(s.Password); err != nil {
		return "", err
	}
	if err := validateHost(s.AnnounceHost); err != nil {
		return "", fmt.Errorf("announce host: %w", err)
	}
	if err := validateHost(s.MasterName); err != nil {
		return "", fmt.Errorf("master name: %w", err)
	}
	host, port, err := splitHostPort(s.Primary)
	if err != nil {
		return "", fmt.Errorf("primary: %w", err)
	}
	if s.Quorum < 1 {
		return "", fmt.Errorf("quorum %d: it must be at least 1", s.Quorum)
	}
	if s.DownAfter < time.Millisecond || s.FailoverTimeout < time.Millisecond {
		return "", fmt.Errorf("down-after %s and failover-timeout %s must each be at least 1ms", s.DownAfter, s.FailoverTimeout)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "port %d\n", s.Port)
	b.WriteString("sentinel resolve-hostnames yes\nsentinel announce-hostnames yes\n")
	fmt.Fprintf(&b, "sentinel announce-ip %s\nsentinel announce-port %d\n", s.AnnounceHost, s.Port)
	// Users that state the default user (RenderSentinelUsers) give its passwords;
	// requirepass would be reset by them.
	if !strings.HasPrefix(s.Users, "user default ") && !strings.Contains(s.Users, "\nuser default ") {
		fmt.Fprintf(&b, "requirepass %s\n", s.Password)
	}
	fmt.Fprintf(&b, "sentinel sentinel-pass %s\n", s.Password)
	fmt.Fprintf(&b, "sentinel monitor %s %s %s %d\n", s.MasterName, host, port, s.Quorum)
	if s.RedisUsername != "" {
		if err := validateHost(s.RedisUsername); err != nil {
			return "", fmt.Errorf("the Redis user name: %w", err)
		}
		fmt.Fprintf(&b, "sentinel auth-user %s %s\n", s.MasterName, s.RedisUsername)
	}
	fmt.Fprintf(&b, "sentinel auth-pass %s %s\n", s.MasterName, s.Password)
	fmt.Fprintf(&b, "sentinel down-after-milliseconds %s %d\n", s.MasterName, s.DownAfter.Milliseconds())
	fmt.Fprintf(&b, "sentinel failover-timeout %s %d\n", s.MasterName, s.FailoverTimeout.Milliseconds())
	fmt.Fprintf(&b, "sentinel parallel-syncs %s 1\n", s.MasterName)
	if err := validateUserLines(s.Users); err != nil {
		return "", err
	}
	b.WriteString(s.Users)
	return b.String(), nil
}

// validateUserLines accepts ACL user lines only, each ending in a newline: a file of them
// read from a mount cannot add any other directive.
func validateUserLines(lines string) error {
	if lines == "" {
		return nil
	}
	if !strings.HasSuffix(lines, "\n") {
		return fmt.Errorf("ACL user lines must end with a newline")
	}
	for i, l := range strings.Split(strings.TrimSuffix(lines, "\n"), "\n") {
		if !strings.HasPrefix(l, "user ") {
			return fmt.Errorf("line %d of the ACL users is not a user directive", i+1)
		}
	}
	return nil
}

// validateHost accepts a host name or address that cannot end or add a directive.
func validateHost(h string) error {
	if h == "" {
		return fmt.Errorf("empty")
	}
	for i := 0; i < len(h); i++ {
		if !hostChar(h[i]) {
			return fmt.Errorf("%q: character %d is not allowed in a host name", h, i+1)
		}
	}
	return nil
}

// hostChar reports whether c may appear in a DNS name, an IPv4 or an IPv6 address.
func hostChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	default:
		return c == '-' || c == '.' || c == ':' || c == '_'
	}
}

func splitHostPort(addr string) (string, string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", "", fmt.Errorf("%q is not host:port: %w", addr, err)
	}
	if err := validateHost(host); err != nil {
		return "", "", err
	}
	for _, c := range port {
		if c < '0' || c > '9' {
			return "", "", fmt.Errorf("%q: the port is not a number", addr)
		}
	}
	return host, port, nil
}
