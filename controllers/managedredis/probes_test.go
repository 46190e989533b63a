package managedredis

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hiringo/auth-operator/internal/redisconf"
	"github.com/hiringo/auth-operator/internal/testutil/poll"
	"github.com/hiringo/auth-operator/internal/testutil/redistest"
)

// probeResult runs a readiness script as the kubelet would (sh -c), on this host against a
// real server at addr: the script's fixed password file and port are replaced by the test's.
func probeResult(t *testing.T, script, passwordFile string, fixedPort int, addr string) error {
	t.Helper()
	_, port, _ := strings.Cut(addr, ":")
	script = strings.ReplaceAll(script, podPasswordFile, passwordFile)
	script = strings.ReplaceAll(script, "-p "+strconv.Itoa(fixedPort), "-p "+port)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "sh", "-c", script).CombinedOutput()
	if err != nil {
		return &probeError{err: err, out: string(out)}
	}
	return nil
}

type probeError struct {
	err error
	out string
}

func (e *probeError) Error() string { return e.err.Error() + ": " + e.out }

// writePassword writes the password file as the Secret volume has it: no trailing newline.
func writePassword(t *testing.T, password string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(p, []byte(password), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestRedisReadiness_OnRealServers runs the Redis readiness script against real redis-server
// processes: a primary is ready, a replica only while its link to the primary is up, and a
// wrong password is never ready.
func TestRedisReadiness_OnRealServers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts redis-server")
	}
	const password = "probe-password"
	primary := redistest.Start(t, redistest.Options{Password: password})
	conf := filepath.Join(t.TempDir(), "replica.conf")
	if err := os.WriteFile(conf, []byte("masterauth "+password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	replica := redistest.Start(t, redistest.Options{Password: password, ReplicaOf: primary.Addr, ConfigFile: conf})
	good, wrong := writePassword(t, password), writePassword(t, "not-the-password")

	if err := probeResult(t, redisReadinessScript, good, Port, primary.Addr); err != nil {
		t.Errorf("the primary is not ready: %v", err)
	}
	poll.Until(t, 20*time.Second, "the replica is ready once linked", func() error {
		return probeResult(t, redisReadinessScript, good, Port, replica.Addr)
	})
	if err := probeResult(t, redisReadinessScript, wrong, Port, primary.Addr); err == nil {
		t.Error("ready with a wrong password")
	}
	primary.Kill()
	poll.Until(t, 20*time.Second, "the replica is not ready once its primary is gone", func() error {
		if probeResult(t, redisReadinessScript, good, Port, replica.Addr) == nil {
			return errReady
		}
		return nil
	})
}

var errReady = &probeError{out: "still ready"}

// TestSentinelReadiness_OnRealSentinels runs the Sentinel readiness script against real
// Sentinels: ready while they monitor the named primary, see it up and know a replica, not
// for a primary they do not monitor, not while they know no replica, and not once the
// primary is down.
func TestSentinelReadiness_OnRealSentinels(t *testing.T) {
	if testing.Short() {
		t.Skip("starts redis-server and redis-sentinel")
	}
	const password = "sentinel-password"
	g := redistest.StartGroup(t, redistest.GroupOptions{Replicas: 1, Sentinels: 1, SentinelPassword: password})
	pw := writePassword(t, password)
	sentinel := g.SentinelAddrs()[0]
	if err := probeResult(t, sentinelReadinessScript(g.MasterName), pw, redisconf.SentinelPort, sentinel); err != nil {
		t.Errorf("a Sentinel that monitors its primary is not ready: %v", err)
	}
	if err := probeResult(t, sentinelReadinessScript("some-other-name"), pw, redisconf.SentinelPort, sentinel); err == nil {
		t.Error("ready for a primary the Sentinel does not monitor")
	}
	alone := redistest.StartSentinel(t, redistest.Start(t, redistest.Options{}).Addr, "alone", password)
	sc := redis.NewSentinelClient(&redis.Options{Addr: alone.Addr, Password: password})
	defer sc.Close()
	poll.Until(t, 10*time.Second, "the lone Sentinel sees its primary up", func() error {
		m, err := sc.Master(context.Background(), "alone").Result()
		if err != nil {
			return fmt.Errorf("sentinel master: %w", err)
		}
		if m["flags"] != "master" || m["num-slaves"] != "0" {
			return fmt.Errorf("sentinel master: %v", m)
		}
		return nil
	})
	if err := probeResult(t, sentinelReadinessScript("alone"), pw, redisconf.SentinelPort, alone.Addr); err == nil {
		t.Error("ready while the Sentinel knows no replica it could promote")
	}
	g.Nodes[0].Kill()
	poll.Until(t, 20*time.Second, "not ready once the primary is down", func() error {
		if probeResult(t, sentinelReadinessScript(g.MasterName), pw, redisconf.SentinelPort, sentinel) == nil {
			return errReady
		}
		return nil
	})
}
