package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hiringo/auth-operator/internal/redisconf"
	"github.com/hiringo/auth-operator/internal/testutil/poll"
	"github.com/hiringo/auth-operator/internal/testutil/redistest"
)

// TestRedisTopology_FirstStartFollowsPodZero: with no peer answering (a first start),
// pod 0 writes a primary's redis.conf and pod 1 one that replicates pod 0, each from the
// base redis.conf and the mounted password; a Sentinel monitors pod 0.
func TestRedisTopology_FirstStartFollowsPodZero(t *testing.T) {
	dir := t.TempDir()
	const pw = "0123456789abcdef0123456789abcdef"
	pwFile, base := filepath.Join(dir, "password"), filepath.Join(dir, "redis.conf")
	if err := os.WriteFile(pwFile, []byte(pw+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(base, []byte("requirepass "+pw+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	users := filepath.Join(dir, "sentinel-users.conf")
	lines, err := redisconf.RenderSentinelUsers("a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1", pw, "5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(users, []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	// Nothing listens on port 1 of loopback: every question fails at once.
	common := []string{"--master-name", "auth", "--password-file", pwFile, "--timeout", "200ms",
		"--redis-addrs", "127.0.0.1:1,127.0.0.2:1", "--sentinel-addrs", "127.0.0.3:1"}
	for _, tc := range []struct {
		name string
		args []string
		want []string
		not  string
	}{
		{"pod 0", []string{"--self", "127.0.0.1:1", "--base", base}, []string{"requirepass " + pw, "masterauth " + pw, "replica-announce-ip 127.0.0.1\n"}, "replicaof"},
		{"pod 1", []string{"--self", "127.0.0.2:1", "--base", base}, []string{"replicaof 127.0.0.1 1\n"}, ""},
		{"sentinel", []string{"--role", "sentinel", "--self", "127.0.0.3:1", "--quorum", "2", "--wait", "1500ms"}, []string{"sentinel monitor auth 127.0.0.1 1 2\n", "port 1\n", "requirepass " + pw}, "auth-user"},
		{"sentinel with the ACL users", []string{"--role", "sentinel", "--self", "127.0.0.3:1", "--quorum", "2", "--wait", "1500ms",
			"--redis-username", "sentinel", "--users-file", users}, []string{"sentinel auth-user auth sentinel\n", "sentinel auth-pass auth " + pw, "\nuser default on #", "\nuser authserver on #"}, "requirepass"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "")+".conf")
			args := append([]string{"redis-topology", "--out", out}, append(common, tc.args...)...)
			if _, err := run(t, context.Background(), args...); err != nil {
				t.Fatal(err)
			}
			conf, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(conf), w) {
					t.Errorf("conf lacks %q:\n%s", w, conf)
				}
			}
			if tc.not != "" && strings.Contains(string(conf), tc.not) {
				t.Errorf("conf has %q:\n%s", tc.not, conf)
			}
		})
	}
	if _, err := run(t, context.Background(), "redis-topology", "--role", "replica", "--out", "x"); err == nil || !strings.Contains(err.Error(), "use redis or sentinel") {
		t.Errorf("unknown role: err = %v", err)
	}
}

// TestRedisTopology_ARestartedPrimaryWaitsForTheFailoverAndFollowsTheNewPrimary runs a
// primary, two replicas and three Sentinels (real processes), kills the primary and starts
// its topology step at once, as the kubelet restarts a killed container sooner than the
// Sentinels' down-after. The Sentinels still name it the primary, and its replicas are up:
// it must not start as the primary (it would take writes that the failover then drops) but
// wait until a replica is promoted and follow it.
func TestRedisTopology_ARestartedPrimaryWaitsForTheFailoverAndFollowsTheNewPrimary(t *testing.T) {
	const pw = "0123456789abcdef0123456789abcdef"
	g := redistest.StartGroup(t, redistest.GroupOptions{SentinelPassword: pw})
	dir := t.TempDir()
	pwFile, base, out := filepath.Join(dir, "password"), filepath.Join(dir, "redis.conf"), filepath.Join(dir, "out.conf")
	if err := os.WriteFile(pwFile, []byte(pw), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(base, []byte("requirepass "+pw+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var members []string
	for _, n := range g.Nodes {
		members = append(members, n.Addr)
	}
	killed := g.Nodes[0].Addr
	g.Nodes[0].Kill()
	stdout, err := run(t, context.Background(), "redis-topology", "--role", "redis", "--self", killed, "--base", base, "--out", out,
		"--master-name", g.MasterName, "--password-file", pwFile, "--quorum", "2", "--timeout", "500ms", "--await-failover", "30s",
		"--redis-addrs", strings.Join(members, ","), "--sentinel-addrs", strings.Join(g.SentinelAddrs(), ","))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout, "waiting for the failover") {
		t.Errorf("it did not wait for the failover: %s", stdout)
	}
	conf, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	promoted, err := g.Primary(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	host, port, _ := strings.Cut(promoted, ":")
	if promoted == killed || !strings.Contains(string(conf), "replicaof "+host+" "+port+"\n") {
		t.Fatalf("the restarted primary follows %q; the Sentinels promoted %s:\n%s", conf, promoted, stdout)
	}
}

// TestRedisTopology_AfterARestartOfEveryPodTheFurthestDataIsPrimary runs three Redis with
// AOF (pod 1 the primary), records their offsets with redis-probe as the readiness probe
// does, writes on after pod 0 stopped, stops every pod and loses pod 0's volume: a restart of
// every pod. Nobody names a primary, so the three start gates, run at once, elect one: pod 1,
// whose data goes furthest, never pod 0, the default that would have replicated an empty
// store to the others. Pod 1 then restarts with every acknowledged key.
func TestRedisTopology_AfterARestartOfEveryPodTheFurthestDataIsPrimary(t *testing.T) {
	const pw = "0123456789abcdef0123456789abcdef"
	ctx := context.Background()
	dir := t.TempDir()
	pwFile, base := filepath.Join(dir, "password"), filepath.Join(dir, "redis.conf")
	if err := os.WriteFile(pwFile, []byte(pw), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(base, []byte("requirepass "+pw+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var nodes [3]*redistest.Server
	var dataDirs, records, members [3]string
	for i := range nodes {
		dataDirs[i] = filepath.Join(dir, fmt.Sprintf("data-%d", i))
		records[i] = filepath.Join(dataDirs[i], "topology-record")
		if err := os.Mkdir(dataDirs[i], 0o700); err != nil {
			t.Fatal(err)
		}
		s, err := redistest.New(dataDirs[i], redistest.Options{Password: pw, AppendOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Stop)
		nodes[i], members[i] = s, s.Addr
	}
	admin := func(i int) *redis.Client {
		c := redis.NewClient(&redis.Options{Addr: nodes[i].Addr, Password: pw, DisableIdentity: true})
		t.Cleanup(func() { c.Close() })
		return c
	}
	primary := admin(1)
	for _, i := range []int{0, 2} {
		host, port, _ := net.SplitHostPort(nodes[1].Addr)
		if err := admin(i).ConfigSet(ctx, "masterauth", pw).Err(); err != nil {
			t.Fatal(err)
		}
		if err := admin(i).Do(ctx, "replicaof", host, port).Err(); err != nil {
			t.Fatal(err)
		}
	}
	write := func(from, to, acks int) {
		t.Helper()
		for k := from; k < to; k++ {
			if err := primary.Set(ctx, fmt.Sprintf("k%d", k), "v", 0).Err(); err != nil {
				t.Fatal(err)
			}
		}
		poll.Until(t, 10*time.Second, fmt.Sprintf("%d replicas acknowledge", acks), func() error {
			if n, err := primary.Do(ctx, "wait", acks, 1000).Int(); err != nil || n < acks {
				return fmt.Errorf("WAIT: %d, %w", n, err)
			}
			return nil
		})
	}
	probe := func(i int) {
		t.Helper()
		poll.Until(t, 10*time.Second, fmt.Sprintf("pod %d's readiness probe passes and records", i), func() error {
			_, err := run(t, ctx, "redis-probe", "--addr", nodes[i].Addr, "--password-file", pwFile, "--record-file", records[i])
			return err
		})
	}
	write(0, 50, 2)
	for i := range nodes {
		probe(i)
	}
	nodes[0].Kill()
	write(50, 100, 1)
	probe(1)
	probe(2)
	nodes[1].Kill()
	nodes[2].Kill()
	// Pod 0's volume is lost: a new, empty one.
	if err := os.RemoveAll(dataDirs[0]); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(dataDirs[0], 0o700); err != nil {
		t.Fatal(err)
	}

	// Each gate, once it has decided, starts its Redis on the written configuration, as the
	// container's --exec does: the others then follow what runs.
	outs := make([]string, len(nodes))
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i := range nodes {
		outs[i] = filepath.Join(dir, fmt.Sprintf("out-%d.conf", i))
		wg.Go(func() {
			var out string
			defer func() { t.Logf("pod %d's gate:\n%s", i, out) }()
			if out, errs[i] = run(t, ctx, "redis-topology", "--role", "redis", "--self", members[i], "--base", base, "--out", outs[i],
				"--master-name", "auth", "--password-file", pwFile, "--timeout", "300ms", "--redis-addrs", strings.Join(members[:], ","),
				"--sentinel-addrs", "127.0.0.1:1", "--record-file", records[i], "--data-dir", dataDirs[i],
				"--electing-file", filepath.Join(dir, fmt.Sprintf("electing-%d", i)), "--elect-listen", members[i], "--elect-wait", "30s"); errs[i] == nil {
				errs[i] = startRedisAt(t, outs[i], members[i], dataDirs[i])
			}
		})
	}
	wg.Wait()
	for i := range nodes {
		if errs[i] != nil {
			t.Fatalf("pod %d: %v", i, errs[i])
		}
	}
	// Pod 1 and pod 2 hold every acknowledged key (pod 2's offset may pass pod 1's recorded
	// one by the primary's pings); pod 0, empty, must not be the primary.
	var elected string
	for i := range nodes {
		role, err := admin(i).Do(ctx, "role").Slice()
		if err != nil {
			t.Fatal(err)
		}
		if role[0] == "master" {
			if elected != "" || i == 0 {
				t.Fatalf("pod %d is a primary beside %q: want one primary, pod 1 or 2", i, elected)
			}
			elected = members[i]
		}
	}
	if elected == "" {
		t.Fatal("no primary elected")
	}
	for i := range nodes {
		poll.Until(t, 10*time.Second, fmt.Sprintf("pod %d holds every acknowledged key", i), func() error {
			if n, err := admin(i).DBSize(ctx).Result(); err != nil || n != 100 {
				return fmt.Errorf("%d keys (%w), want 100", n, err)
			}
			return nil
		})
	}
}

// startRedisAt runs redis-server on conf at addr with its AOF in dir, as the Redis
// container does after its start gate, until the test ends.
func startRedisAt(t *testing.T, conf, addr, dir string) error {
	host, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(redistest.Binary(), conf, "--bind", host, "--port", port, "--dir", dir, "--appendonly", "yes", "--save", "",
		"--logfile", filepath.Join(dir, "redis.log"))
	if err := cmd.Start(); err != nil {
		return err
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return nil
}

// TestRedisProbe_PassesWhileElectingAndFailsWithoutRedis: the readiness probe of a pod whose
// start gate elects passes (the StatefulSet then starts the next pod, which the election
// needs); without the election and with no Redis answering, it fails and records nothing.
func TestRedisProbe_PassesWhileElectingAndFailsWithoutRedis(t *testing.T) {
	dir := t.TempDir()
	electing, record := filepath.Join(dir, "electing"), filepath.Join(dir, "record")
	args := []string{"redis-probe", "--addr", "127.0.0.1:1", "--timeout", "200ms", "--record-file", record, "--electing-file", electing}
	if _, err := run(t, context.Background(), args...); err == nil {
		t.Error("the probe passed with no Redis and no election")
	}
	if err := os.WriteFile(electing, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, context.Background(), args...); err != nil {
		t.Errorf("the probe failed while the gate elects: %v", err)
	}
	if _, err := os.Stat(record); !os.IsNotExist(err) {
		t.Errorf("a record was written without Redis: %v", err)
	}
}
