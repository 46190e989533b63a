package redisconf_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/hiringo/auth-operator/internal/redisconf"
)

func TestRenderReplica(t *testing.T) {
	base := "requirepass " + password + "\nmaxmemory-policy noeviction\n"
	for _, tc := range []struct {
		name    string
		s       redisconf.ReplicaSettings
		want    []string
		wantNot string
		err     string
	}{
		{"primary", redisconf.ReplicaSettings{Password: password, AnnounceHost: "a-redis-0.a-redis-headless.ns.svc", AnnouncePort: 6379},
			[]string{base, "masterauth " + password + "\n", "replica-announce-ip a-redis-0.a-redis-headless.ns.svc\n", "replica-announce-port 6379\n", "repl-diskless-sync-delay 0\n"}, "replicaof", ""},
		{"replica", redisconf.ReplicaSettings{Password: password, AnnounceHost: "a-redis-1.h", AnnouncePort: 6379, Primary: "a-redis-0.h:6379"},
			[]string{"replicaof a-redis-0.h 6379\n"}, "", ""},
		{"injected host", redisconf.ReplicaSettings{Password: password, AnnounceHost: "x\nreplicaof evil 1", AnnouncePort: 6379}, nil, "", "not allowed in a host name"},
		{"injected primary", redisconf.ReplicaSettings{Password: password, AnnounceHost: "x", Primary: "evil 1:6379"}, nil, "", "not allowed in a host name"},
		{"primary without a port", redisconf.ReplicaSettings{Password: password, AnnounceHost: "x", Primary: "a-redis-0"}, nil, "", "is not host:port"},
		{"bad password", redisconf.ReplicaSettings{Password: "short", AnnounceHost: "x"}, nil, "", "invalid Redis password"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := redisconf.RenderReplica(base, tc.s)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("conf lacks %q:\n%s", w, got)
				}
			}
			if tc.wantNot != "" && strings.Contains(got, tc.wantNot) {
				t.Errorf("conf has %q:\n%s", tc.wantNot, got)
			}
		})
	}
}

func TestRenderSentinel(t *testing.T) {
	s := redisconf.SentinelSettings{
		MasterName: "auth", Primary: "auth-redis-0.auth-redis-headless.ns.svc:6379", Quorum: 2, Password: password,
		AnnounceHost: "auth-redis-sentinel-1.auth-redis-headless.ns.svc", Port: 26379,
		DownAfter: redisconf.DownAfter, FailoverTimeout: redisconf.FailoverTimeout,
	}
	got, err := redisconf.RenderSentinel(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{
		"port 26379\n", "sentinel resolve-hostnames yes\n", "sentinel announce-hostnames yes\n",
		"sentinel announce-ip auth-redis-sentinel-1.auth-redis-headless.ns.svc\n",
		"requirepass " + password + "\n", "sentinel sentinel-pass " + password + "\n",
		"sentinel monitor auth auth-redis-0.auth-redis-headless.ns.svc 6379 2\n", "sentinel auth-pass auth " + password + "\n",
		"sentinel down-after-milliseconds auth 1000\n", "sentinel failover-timeout auth 5000\n",
	} {
		if !strings.Contains(got, w) {
			t.Errorf("sentinel.conf lacks %q:\n%s", w, got)
		}
	}
	if strings.Index(got, "sentinel monitor") > strings.Index(got, "sentinel auth-pass") {
		t.Error("the master's settings come before its monitor line, which Sentinel refuses")
	}
	for name, mutate := range map[string]func(*redisconf.SentinelSettings){
		"password":    func(s *redisconf.SentinelSettings) { s.Password = "bad pass" },
		"master name": func(s *redisconf.SentinelSettings) { s.MasterName = "a b" },
		"primary":     func(s *redisconf.SentinelSettings) { s.Primary = "nohost" },
		"quorum":      func(s *redisconf.SentinelSettings) { s.Quorum = 0 },
		"timings":     func(s *redisconf.SentinelSettings) { s.DownAfter = 0 },
	} {
		bad := s
		mutate(&bad)
		if _, err := redisconf.RenderSentinel(bad); err == nil {
			t.Errorf("a bad %s was rendered", name)
		} else if name == "password" && !errors.Is(err, redisconf.ErrInvalidPassword) {
			t.Errorf("bad password: err = %v", err)
		}
	}
}
