package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hiringo/auth-operator/internal/redisconf"
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
