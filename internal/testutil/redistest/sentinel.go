package redistest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// SentinelBinary is the redis-sentinel executable the helper runs; REDIS_SENTINEL
// overrides it.
func SentinelBinary() string {
	if b := os.Getenv("REDIS_SENTINEL"); b != "" {
		return b
	}
	return "redis-sentinel"
}

// SentinelTiming is how fast Sentinels fail a primary over.
type SentinelTiming struct {
	// DownAfter is how long the primary may not answer before a Sentinel thinks it
	// down (down-after-milliseconds). Default 1s.
	DownAfter time.Duration
	// FailoverTimeout bounds one failover attempt and spaces retries
	// (failover-timeout). Default 5s.
	FailoverTimeout time.Duration
}

func (st SentinelTiming) withDefaults() SentinelTiming {
	if st.DownAfter <= 0 {
		st.DownAfter = time.Second
	}
	if st.FailoverTimeout <= 0 {
		st.FailoverTimeout = 5 * time.Second
	}
	return st
}

// GroupOptions shape a replication group.
type GroupOptions struct {
	// Replicas of the primary; default 2.
	Replicas int
	// Sentinels watching it; default 3 (quorum 2).
	Sentinels int
	// SentinelPassword, when set, is required by the Sentinels (requirepass in their
	// configuration), as the operator configures them.
	SentinelPassword string
	Timing           SentinelTiming
}

// Group is a primary, its replicas and the Sentinels that watch them, each a real
// process on a free loopback port, all stopped when the test ends.
type Group struct {
	// MasterName is the name the Sentinels know the primary by.
	MasterName string
	// Nodes are the Redis servers; Nodes[0] started as the primary.
	Nodes     []*Server
	Sentinels []*Server
	password  string
}

// StartGroup runs a replication group and returns once every replica is in sync and
// every Sentinel knows every replica and every other Sentinel, so that a failover can
// start at once. It fails the test when that takes more than 30s.
func StartGroup(t testing.TB, opts GroupOptions) *Group {
	t.Helper()
	skipShort(t)
	if opts.Replicas <= 0 {
		opts.Replicas = 2
	}
	if opts.Sentinels <= 0 {
		opts.Sentinels = 3
	}
	timing := opts.Timing.withDefaults()
	g := &Group{MasterName: "authtest", password: opts.SentinelPassword}
	primary := Start(t, Options{})
	g.Nodes = append(g.Nodes, primary)
	for range opts.Replicas {
		g.Nodes = append(g.Nodes, Start(t, Options{ReplicaOf: primary.Addr}))
	}
	bin, err := exec.LookPath(SentinelBinary())
	if err != nil {
		t.Fatalf("redis-sentinel is needed by these tests and was not found on PATH (install the Debian package redis-sentinel, or run make redis-server): %v", err)
	}
	for range opts.Sentinels {
		s, err := startSentinel(t.TempDir(), bin, g.MasterName, primary.Addr, opts.Sentinels/2+1, timing, opts.SentinelPassword)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Stop)
		g.Sentinels = append(g.Sentinels, s)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := g.waitSettled(ctx, primary.Addr, opts.Replicas, opts.Sentinels-1); err != nil {
		t.Fatal(err)
	}
	return g
}

// StartSentinel runs one Sentinel (quorum 1, the default timings) that monitors primary
// under name, stopped when the test ends; it returns at once, not waiting for the Sentinel
// to learn anything.
func StartSentinel(t testing.TB, primary, name, password string) *Server {
	t.Helper()
	skipShort(t)
	bin, err := exec.LookPath(SentinelBinary())
	if err != nil {
		t.Fatalf("redis-sentinel is needed by this test and was not found on PATH: %v", err)
	}
	s, err := startSentinel(t.TempDir(), bin, name, primary, 1, SentinelTiming{}.withDefaults(), password)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// startSentinel runs one redis-sentinel on a free loopback port. Its configuration
// file is its own: Sentinel rewrites it with what it learns.
func startSentinel(dir, bin, name, primary string, quorum int, timing SentinelTiming, password string) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, fmt.Errorf("finding a free loopback port: %w", err)
	}
	host, pport, err := net.SplitHostPort(primary)
	if err != nil {
		return nil, err
	}
	conf := []string{
		"bind 127.0.0.1",
		"port " + strconv.Itoa(port),
		"dir " + dir,
		"logfile " + filepath.Join(dir, "sentinel.log"),
		fmt.Sprintf("sentinel monitor %s %s %s %d", name, host, pport, quorum),
		fmt.Sprintf("sentinel down-after-milliseconds %s %d", name, timing.DownAfter.Milliseconds()),
		fmt.Sprintf("sentinel failover-timeout %s %d", name, timing.FailoverTimeout.Milliseconds()),
		fmt.Sprintf("sentinel parallel-syncs %s 1", name),
	}
	if password != "" {
		conf = append(conf, "requirepass "+password)
	}
	path := filepath.Join(dir, "sentinel.conf")
	if err := os.WriteFile(path, []byte(strings.Join(conf, "\n")+"\n"), 0o600); err != nil {
		return nil, err
	}
	s := &Server{
		Addr:    net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		logPath: filepath.Join(dir, "sentinel.log"),
		args:    []string{bin, path},
	}
	if err := s.start(); err != nil {
		return nil, err
	}
	return s, nil
}

// SentinelAddrs are the Sentinels' host:port pairs.
func (g *Group) SentinelAddrs() []string {
	addrs := make([]string, len(g.Sentinels))
	for i, s := range g.Sentinels {
		addrs[i] = s.Addr
	}
	return addrs
}

// Node is the server of the group listening on addr, or nil.
func (g *Group) Node(addr string) *Server {
	for _, n := range g.Nodes {
		if n.Addr == addr {
			return n
		}
	}
	return nil
}

// sentinel is a client of Sentinel i.
func (g *Group) sentinel(i int) *redis.SentinelClient {
	return redis.NewSentinelClient(&redis.Options{Addr: g.Sentinels[i].Addr, Password: g.password, DialTimeout: time.Second, ReadTimeout: time.Second, MaxRetries: -1})
}

// Primary is the primary's address as a majority of the Sentinels that answer
// report it.
func (g *Group) Primary(ctx context.Context) (string, error) {
	votes := map[string]int{}
	var lastErr error
	for i := range g.Sentinels {
		sc := g.sentinel(i)
		addr, err := sc.GetMasterAddrByName(ctx, g.MasterName).Result()
		sc.Close()
		if err != nil {
			lastErr = err
			continue
		}
		a := net.JoinHostPort(addr[0], addr[1])
		votes[a]++
		if votes[a] > len(g.Sentinels)/2 {
			return a, nil
		}
	}
	if lastErr == nil {
		lastErr = errors.New("no Sentinel error")
	}
	return "", fmt.Errorf("no majority of Sentinels agrees on a primary (%v): %w", votes, lastErr)
}

// Failover asks a Sentinel to fail over now, the primary being alive: it is demoted
// to a replica of the promoted one.
func (g *Group) Failover(ctx context.Context) error {
	sc := g.sentinel(0)
	defer sc.Close()
	return sc.Failover(ctx, g.MasterName).Err()
}

// waitSettled polls until every replica of primary is linked and every Sentinel knows
// the replicas and the other Sentinels.
func (g *Group) waitSettled(ctx context.Context, primary string, replicas, others int) error {
	var last error
	for {
		last = g.settled(ctx, primary, replicas, others)
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("replication group not settled: %w", last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (g *Group) settled(ctx context.Context, primary string, replicas, others int) error {
	for _, n := range g.Nodes {
		if n.Addr == primary {
			continue
		}
		info, err := command(n.Addr, "INFO", "replication")
		if err != nil {
			return err
		}
		if !strings.Contains(info, "master_link_status:up") {
			return fmt.Errorf("replica %s not linked to its primary", n.Addr)
		}
	}
	for i := range g.Sentinels {
		sc := g.sentinel(i)
		m, err := sc.Master(ctx, g.MasterName).Result()
		sc.Close()
		if err != nil {
			return err
		}
		if m["num-slaves"] != strconv.Itoa(replicas) || m["num-other-sentinels"] != strconv.Itoa(others) {
			return fmt.Errorf("sentinel %d knows %s replicas and %s other Sentinels", i, m["num-slaves"], m["num-other-sentinels"])
		}
		if strings.Contains(m["flags"], "down") {
			return errors.New("sentinel " + strconv.Itoa(i) + " sees the primary down: " + m["flags"])
		}
	}
	return nil
}

// Command sends one command to a server without authentication and returns its simple
// or bulk string reply, for tests that reconfigure a node (REPLICAOF, FLUSHALL).
func Command(addr string, args ...string) (string, error) { return command(addr, args...) }

// StartSentinelConf runs a Sentinel on conf, a whole sentinel.conf that listens on port (as
// internal/redisconf renders it), bound to loopback with its files in a directory of the
// test's, and stops it when the test ends. It returns once the Sentinel answers.
func StartSentinelConf(t testing.TB, conf string, port int) string {
	t.Helper()
	skipShort(t)
	bin, err := exec.LookPath(SentinelBinary())
	if err != nil {
		t.Fatalf("redis-sentinel is needed by this test and was not found on PATH: %v", err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "sentinel.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &Server{
		Addr:    net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		logPath: filepath.Join(dir, "sentinel.log"),
		args:    []string{bin, path, "--bind", "127.0.0.1", "--dir", dir, "--logfile", filepath.Join(dir, "sentinel.log")},
	}
	if err := s.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s.Addr
}
