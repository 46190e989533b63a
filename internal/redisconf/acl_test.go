package redisconf_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hiringo/auth-operator/authserver/blacklist"
	"github.com/hiringo/auth-operator/internal/redisconf"
	"github.com/hiringo/auth-operator/internal/testutil/loopback"
	"github.com/hiringo/auth-operator/internal/testutil/poll"
	"github.com/hiringo/auth-operator/internal/testutil/redistest"
	"github.com/hiringo/auth-operator/internal/testutil/storetest"
)

// The passwords and key prefix of the ACL tests: the administrator's is password.
const (
	authServerPassword = "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1"
	sentinelPassword   = "5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e"
	keyPrefix          = "authserver:prod.auth.0f8e2c1a:"
)

// startACLRedis runs a real redis-server on the managed Redis's rendered redis.conf, with its
// ACL users, replicating primary when it is not "".
func startACLRedis(t *testing.T, primary string) *redistest.Server {
	t.Helper()
	base, err := redisconf.Render(password, 0)
	if err != nil {
		t.Fatal(err)
	}
	users, err := redisconf.RenderUsers(redisconf.Users{AuthServer: authServerPassword, Sentinel: sentinelPassword, KeyPrefix: keyPrefix})
	if err != nil {
		t.Fatal(err)
	}
	// Replication as a Redis pod's start gate writes it; the replica starts replicating once
	// it announces the test's port rather than the pod's.
	conf, err := redisconf.RenderReplica(base+users, redisconf.ReplicaSettings{Password: password, AnnounceHost: "127.0.0.1", AnnouncePort: 6379})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(conf, authServerPassword) || strings.Contains(conf, sentinelPassword) {
		t.Fatalf("redis.conf holds a user's password, not its hash:\n%s", conf)
	}
	path := filepath.Join(t.TempDir(), "redis.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := redistest.Start(t, redistest.Options{Password: password, ConfigFile: path})
	// The rendered file announces the pod's port; the test's server listens on another.
	_, port, _ := net.SplitHostPort(srv.Addr)
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr, Password: password, DisableIdentity: true})
	defer admin.Close()
	if err := admin.ConfigSet(context.Background(), "replica-announce-port", port).Err(); err != nil {
		t.Fatal(err)
	}
	if primary != "" {
		host, port, _ := net.SplitHostPort(primary)
		if err := admin.Do(context.Background(), "replicaof", host, port).Err(); err != nil {
			t.Fatal(err)
		}
	}
	return srv
}

// writePassword writes p to a file, as the Secret volume holds it.
func writePassword(t *testing.T, p string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(path, []byte(p), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestRenderUsers_TheAuthServersRunTheWholeStoreAsTheirUser runs the store conformance suite
// on a real redis-server as the auth servers' ACL user, with every check the auth servers
// make at start, and a Follow whose end-to-end canary and a revocation arrive: every
// command the store sends, directly or from its scripts, is granted.
func TestRenderUsers_TheAuthServersRunTheWholeStoreAsTheirUser(t *testing.T) {
	srv := startACLRedis(t, "")
	client, err := blacklist.NewClient(blacklist.ClientConfig{Addrs: []string{srv.Addr}, Username: redisconf.AuthServerUser,
		PasswordFile: writePassword(t, authServerPassword), Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	storetest.Run(t, func(t *testing.T) storetest.Store {
		s := blacklist.NewStore(client, blacklist.StoreOptions{Prefix: keyPrefix + strings.ReplaceAll(t.Name(), "/", ":") + ":"})
		t.Cleanup(s.Close)
		return s
	})

	s := blacklist.NewStore(client, blacklist.StoreOptions{Prefix: keyPrefix})
	t.Cleanup(s.Close)
	ctx := t.Context()
	for what, check := range map[string]func(context.Context) error{"version": s.CheckVersion, "publish": s.CheckPublish} {
		if err := check(ctx); err != nil {
			t.Errorf("%s check as the auth servers' user: %v", what, err)
		}
	}
	if use, err := s.ReadMemory(ctx); err != nil || use.Keys == 0 {
		t.Errorf("ReadMemory = %+v, %v; want the memory and key count", use, err)
	}

	sink := &recordingSink{}
	followCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Follow(followCtx, sink, blacklist.FollowOptions{HealthInterval: 100 * time.Millisecond})
	}()
	t.Cleanup(func() { stop(); <-done })
	poll.Until(t, 5*time.Second, "the revocation subscription is trusted (its canary arrived)", func() error {
		return sink.err(func(r *recordingSink) bool { return r.resyncs > 0 }, "no resync")
	})
	sub := blacklist.Subject{UserID: "u-1", TokenID: "t-follow", IssuedAt: time.Now()}
	if err := s.RevokeIDs(ctx, sub, blacklist.IDsOf(sub), blacklist.Expiry{Token: time.Now().Add(time.Hour), Unrecorded: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 5*time.Second, "the revocation reaches the follower", func() error {
		return sink.err(func(r *recordingSink) bool { return len(r.revoked) > 0 }, "nothing revoked")
	})
}

// TestRenderUsers_TheAuthServersUserCanDoNothingElse: as the auth servers' user, a
// verifier that was taken over can neither read nor write a key or channel outside its
// prefix, nor read the configuration (CONFIG GET would show requirepass), reconfigure,
// flush, replicate elsewhere or manage users; the administrator still can.
func TestRenderUsers_TheAuthServersUserCanDoNothingElse(t *testing.T) {
	srv := startACLRedis(t, "")
	ctx := t.Context()
	c := redis.NewClient(&redis.Options{Addr: srv.Addr, Username: redisconf.AuthServerUser, Password: authServerPassword, DisableIdentity: true})
	defer c.Close()
	if err := c.Set(ctx, keyPrefix+"mine", "1", time.Minute).Err(); err != nil {
		t.Fatalf("a key under the prefix: %v", err)
	}
	for _, cmd := range [][]any{
		{"get", "authserver:other.tenant:bl:x"}, {"set", "elsewhere", "1"}, {"exists", "authserver:"},
		{"eval", "return redis.call('GET', KEYS[1])", 1, "elsewhere"},
		{"eval", "return redis.call('FLUSHALL')", 0},
		{"publish", "authserver:other.tenant:revocations", "x"}, {"subscribe", "__sentinel__:hello"},
		{"config", "get", "requirepass"}, {"config", "set", "maxmemory-policy", "allkeys-lru"},
		{"flushall"}, {"flushdb"}, {"keys", "*"}, {"scan", "0"}, {"del", keyPrefix + "mine"},
		{"replicaof", "evil.example.com", "6379"}, {"acl", "list"}, {"acl", "setuser", redisconf.AuthServerUser, "+@all"},
		{"shutdown"}, {"monitor"}, {"script", "flush"}, {"function", "flush"}, {"client", "kill", "type", "normal"},
		{"save"}, {"bgrewriteaof"},
	} {
		// A script's refused command is reported as the script's error.
		if err := c.Do(ctx, cmd...).Err(); !redis.HasErrorPrefix(err, "NOPERM") && !strings.Contains(fmt.Sprint(err), "can't run this command") {
			t.Errorf("%v as the auth servers' user: %v, want NOPERM", cmd, err)
		}
	}
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr, Password: password, DisableIdentity: true})
	defer admin.Close()
	if n, err := admin.DBSize(ctx).Result(); err != nil || n != 1 {
		t.Errorf("the administrator sees %d keys (%v), want the one key", n, err)
	}
	if err := c.Do(ctx, "auth", "default", authServerPassword).Err(); !redis.HasErrorPrefix(err, "WRONGPASS") {
		t.Errorf("the auth servers' password as the administrator: %v, want WRONGPASS", err)
	}
}

// TestRenderSentinelUsers_FailoverAsTheSentinelsUser runs a primary, a replica and a Sentinel,
// each on its rendered configuration: the Sentinel monitors and fails Redis over as its own
// ACL user; the auth servers, as theirs, find the primary through the Sentinel and write
// with a replica's acknowledgement before and after the failover, but may not reconfigure
// the Sentinel. The Sentinel's administrator is its own password (or the Redis
// administrator's), not the auth servers'.
func TestRenderSentinelUsers_FailoverAsTheSentinelsUser(t *testing.T) {
	primary := startACLRedis(t, "")
	replica := startACLRedis(t, primary.Addr)
	users, err := redisconf.RenderSentinelUsers(authServerPassword, sentinelPassword, password)
	if err != nil {
		t.Fatal(err)
	}
	sentinel := startACLSentinel(t, primary.Addr, users)
	ctx := t.Context()

	asAuthServers := redis.NewSentinelClient(&redis.Options{Addr: sentinel, Username: redisconf.AuthServerUser, Password: authServerPassword, DisableIdentity: true})
	defer asAuthServers.Close()
	poll.Until(t, 15*time.Second, "the Sentinel knows the replica", func() error {
		replicas, err := asAuthServers.Replicas(ctx, "auth").Result()
		if err != nil {
			return err
		}
		if len(replicas) != 1 || replicas[0]["flags"] != "slave" {
			return fmt.Errorf("replicas %v", replicas)
		}
		return nil
	})
	for _, cmd := range [][]any{
		{"sentinel", "set", "auth", "down-after-milliseconds", "1"}, {"sentinel", "remove", "auth"},
		{"sentinel", "monitor", "evil", "127.0.0.1", "1", "1"}, {"sentinel", "failover", "auth"},
		{"sentinel", "reset", "*"}, {"sentinel", "config", "get", "*"}, {"acl", "list"}, {"shutdown"},
	} {
		if err := asAuthServers.Process(ctx, redis.NewCmd(ctx, cmd...)); !redis.HasErrorPrefix(err, "NOPERM") {
			t.Errorf("%v at the Sentinel as the auth servers' user: %v, want NOPERM", cmd, err)
		}
	}

	client, err := blacklist.NewClient(blacklist.ClientConfig{
		Mode: blacklist.ModeSentinel, Addrs: []string{sentinel}, MasterName: "auth",
		Username: redisconf.AuthServerUser, PasswordFile: writePassword(t, authServerPassword),
		SentinelUsername: redisconf.AuthServerUser, SentinelPasswordFile: writePassword(t, authServerPassword), Timeout: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	s := blacklist.NewStore(client, blacklist.StoreOptions{Prefix: keyPrefix, ReplicaAcks: blacklist.ReplicaAcks{Min: 1, Timeout: time.Second}})
	t.Cleanup(s.Close)
	revoke := func(id string) error {
		sub := blacklist.Subject{UserID: "u-1", TokenID: id, IssuedAt: time.Now()}
		return s.RevokeIDs(ctx, sub, blacklist.IDsOf(sub), blacklist.Expiry{Token: time.Now().Add(time.Hour), Unrecorded: time.Now().Add(time.Hour)})
	}
	if err := revoke("before-failover"); err != nil {
		t.Fatalf("a logout through the Sentinel, acknowledged by the replica: %v", err)
	}

	for _, admin := range []string{sentinelPassword, password} {
		c := redis.NewSentinelClient(&redis.Options{Addr: sentinel, Password: admin, DisableIdentity: true})
		if err := c.Ping(ctx).Err(); err != nil {
			t.Errorf("the Sentinel refuses an administrator's password: %v", err)
		}
		c.Close()
	}
	admin := redis.NewSentinelClient(&redis.Options{Addr: sentinel, Password: sentinelPassword, DisableIdentity: true})
	defer admin.Close()
	if err := admin.Failover(ctx, "auth").Err(); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 20*time.Second, "the Sentinel promoted the replica, reconfiguring both as its ACL user", func() error {
		addr, err := asAuthServers.GetMasterAddrByName(ctx, "auth").Result()
		if err != nil {
			return err
		}
		if got := net.JoinHostPort(addr[0], addr[1]); got != replica.Addr {
			return fmt.Errorf("the primary is %s", got)
		}
		old := redis.NewClient(&redis.Options{Addr: primary.Addr, Password: password, DisableIdentity: true})
		defer old.Close()
		role, err := old.Do(ctx, "role").Slice()
		if err != nil || len(role) == 0 || role[0] != "slave" {
			return fmt.Errorf("the old primary's role: %v, %w", role, err)
		}
		return nil
	})
	poll.Until(t, 20*time.Second, "a logout after the failover, acknowledged by the old primary", func() error {
		return revoke("after-failover-" + strconv.FormatInt(time.Now().UnixNano(), 10))
	})
}

// startACLSentinel runs a Sentinel on RenderSentinel's configuration with the managed
// Redis's users: its own password, Redis as the Sentinels' ACL user.
func startACLSentinel(t *testing.T, primary, users string) string {
	t.Helper()
	port := loopback.FreePort(t)
	conf, err := redisconf.RenderSentinel(redisconf.SentinelSettings{
		MasterName: "auth", Primary: primary, Quorum: 1, Password: sentinelPassword, RedisUsername: redisconf.SentinelUser, Users: users,
		AnnounceHost: "127.0.0.1", Port: port, DownAfter: redisconf.DownAfter, FailoverTimeout: redisconf.FailoverTimeout,
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(conf, "requirepass") || strings.Contains(conf, authServerPassword) || strings.Contains(conf, password) {
		t.Fatalf("sentinel.conf holds a password other than the Sentinels' own, or requirepass beside the default user:\n%s", conf)
	}
	addr := redistest.StartSentinelConf(t, conf, port)
	poll.Until(t, 10*time.Second, "the Sentinel takes its own password", func() error {
		c := redis.NewSentinelClient(&redis.Options{Addr: addr, Password: sentinelPassword})
		defer c.Close()
		return c.Ping(context.Background()).Err()
	})
	return addr
}

// recordingSink records what Follow hands it.
type recordingSink struct {
	mu      sync.Mutex
	resyncs int
	revoked []string
}

func (r *recordingSink) Revoke(id string) {
	r.mu.Lock()
	r.revoked = append(r.revoked, id)
	r.mu.Unlock()
}
func (r *recordingSink) Distrust() {}
func (r *recordingSink) Resync()   { r.mu.Lock(); r.resyncs++; r.mu.Unlock() }
func (r *recordingSink) RevokeKeys(...string) {
}

// err is nil when ok holds of r, else an error saying what.
func (r *recordingSink) err(ok func(*recordingSink) bool, what string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ok(r) {
		return nil
	}
	return errors.New(what)
}
