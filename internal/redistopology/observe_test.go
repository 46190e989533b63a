package redistopology_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hiringo/auth-operator/internal/redisconf"
	"github.com/hiringo/auth-operator/internal/redistopology"
	"github.com/hiringo/auth-operator/internal/testutil/loopback"
	"github.com/hiringo/auth-operator/internal/testutil/poll"
	"github.com/hiringo/auth-operator/internal/testutil/redistest"
)

const password = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// TestObserve_RealRedisAndSentinel runs a primary, a replica configured by RenderReplica
// and a Sentinel configured by RenderSentinel (real redis-server processes): the rendered
// files are accepted, the replica replicates with masterauth, and Observe hears the
// primary from the Sentinel and from the Redis pods; a peer that is down is left out.
func TestObserve_RealRedisAndSentinel(t *testing.T) {
	dir := t.TempDir()
	primary := redistest.Start(t, redistest.Options{Password: password})
	replicaConf, err := redisconf.RenderReplica("requirepass "+password+"\n", redisconf.ReplicaSettings{
		Password: password, AnnounceHost: "127.0.0.1", AnnouncePort: 6379, Primary: primary.Addr,
	})
	if err != nil {
		t.Fatal(err)
	}
	confPath := filepath.Join(dir, "replica.conf")
	if err := os.WriteFile(confPath, []byte(replicaConf), 0o600); err != nil {
		t.Fatal(err)
	}
	replica := redistest.Start(t, redistest.Options{Password: password, ConfigFile: confPath})

	ctx := context.Background()
	pc := redis.NewClient(&redis.Options{Addr: primary.Addr, Password: password})
	defer pc.Close()
	if err := pc.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	rc := redis.NewClient(&redis.Options{Addr: replica.Addr, Password: password})
	defer rc.Close()
	poll.Until(t, 10*time.Second, "the replica has the primary's key", func() error {
		return rc.Get(ctx, "k").Err()
	})

	sentinel := startSentinel(t, primary.Addr)
	down := "127.0.0.1:1" // nothing listens there
	poll.Until(t, 10*time.Second, "the Sentinel and the Redis pods name the primary", func() error {
		o := redistopology.Observe(ctx, redistopology.Peers{
			Sentinels: []string{sentinel, down}, Redis: []string{primary.Addr, replica.Addr, down},
			MasterName: "auth", Password: password, Timeout: time.Second,
		})
		if len(o.SentinelAnswers) != 1 || o.SentinelAnswers[0] != primary.Addr || len(o.Masters) != 1 || o.Masters[0] != primary.Addr {
			return fmt.Errorf("observation %+v", o)
		}
		if got := redistopology.Primary(o, []string{replica.Addr, primary.Addr}); got != primary.Addr {
			return fmt.Errorf("Primary = %s", got)
		}
		return nil
	})
}

// TestObserve_ASentinelNamingAHostOutsideTheMembersIsNotFollowed: a real Sentinel that
// monitors a Redis outside the member list (reconfigured by whoever could talk to it) is
// heard, but a starting pod follows the running member that is a master, never that host.
func TestObserve_ASentinelNamingAHostOutsideTheMembersIsNotFollowed(t *testing.T) {
	primary := redistest.Start(t, redistest.Options{Password: password})
	rogue := redistest.Start(t, redistest.Options{Password: password})
	sentinel := startSentinel(t, rogue.Addr)
	ctx := context.Background()
	members := []string{"127.0.0.1:1", primary.Addr}
	poll.Until(t, 10*time.Second, "the Sentinel names the rogue primary", func() error {
		o := redistopology.Observe(ctx, redistopology.Peers{
			Sentinels: []string{sentinel}, Redis: members, MasterName: "auth", Password: password, Timeout: time.Second,
		})
		if len(o.SentinelAnswers) != 1 || o.SentinelAnswers[0] != rogue.Addr {
			return fmt.Errorf("observation %+v", o)
		}
		if got := redistopology.Primary(o, members); got != primary.Addr {
			t.Fatalf("Primary = %s, want the member %s that is a master, not the Sentinel's %s", got, primary.Addr, rogue.Addr)
		}
		return nil
	})
}

// startSentinel runs a Sentinel from RenderSentinel that monitors primary, and stops it at
// the end of the test.
func startSentinel(t *testing.T, primary string) string {
	t.Helper()
	port := loopback.FreePort(t)
	conf, err := redisconf.RenderSentinel(redisconf.SentinelSettings{
		MasterName: "auth", Primary: primary, Quorum: 1, Password: password, AnnounceHost: "127.0.0.1",
		Port: port, DownAfter: redisconf.DownAfter, FailoverTimeout: redisconf.FailoverTimeout,
	})
	if err != nil {
		t.Fatal(err)
	}
	return redistest.StartSentinelConf(t, conf, port)
}

// TestObserve_ASentinelWithoutTheACLUsersIsAskedAsTheAdministrator: during an upgrade, a
// Redis pod with the ACL users asks a Sentinel that predates them (it knows only the default
// user, with the Redis administrator's password): refused as the auth servers' user, the
// pod asks again as the administrator and hears the primary.
func TestObserve_ASentinelWithoutTheACLUsersIsAskedAsTheAdministrator(t *testing.T) {
	primary := redistest.Start(t, redistest.Options{Password: password})
	sentinel := startSentinel(t, primary.Addr)
	ctx := context.Background()
	poll.Until(t, 10*time.Second, "the Sentinel names the primary", func() error {
		o := redistopology.Observe(ctx, redistopology.Peers{
			Sentinels: []string{sentinel}, MasterName: "auth", Password: password, Timeout: time.Second,
			SentinelUsername: "authserver", SentinelPassword: "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1",
		})
		if len(o.SentinelAnswers) != 1 || o.SentinelAnswers[0] != primary.Addr {
			return fmt.Errorf("observation %+v", o)
		}
		return nil
	})
}
