package localkubelet

import (
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestRemapPaths(t *testing.T) {
	m := []PathMapping{
		{ContainerPath: "/etc/redis", LocalPath: "/w/p/volumes/config"},
		{ContainerPath: "/data", LocalPath: "/w/claims/data-redis-0"},
		{ContainerPath: "/etc/authserver/keys", LocalPath: "/w/p/volumes/keys"},
		{ContainerPath: "/etc/authserver/redis", LocalPath: "/w/p/volumes/redis-password"},
	}
	for _, tc := range []struct{ in, want string }{
		{"/etc/redis/redis.conf", "/w/p/volumes/config/redis.conf"},
		{"/data", "/w/claims/data-redis-0"},
		{"--dir=/data", "--dir=/w/claims/data-redis-0"},
		{"/database", "/database"},
		{"/etc/authserver/keys", "/w/p/volumes/keys"},
		{"/etc/authserver/redis/password", "/w/p/volumes/redis-password/password"},
		{"/etc/authserver", "/etc/authserver"},
		{"x/data", "x/data"},
		{"/data,/data/a", "/w/claims/data-redis-0,/w/claims/data-redis-0/a"},
		{"redis-server", "redis-server"},
	} {
		if got := RemapPaths(tc.in, m); got != tc.want {
			t.Errorf("RemapPaths(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestRewriteServiceAddrs(t *testing.T) {
	known := map[ServiceRef]string{
		{Namespace: "default", Name: "demo-redis", Port: 6379}:             "127.0.0.1:40001",
		{Namespace: "other", Name: "cache", Port: 6379}:                    "127.0.0.1:40002",
		{Namespace: "default", Name: "r-headless", Port: 6379, Pod: "r-0"}: "127.0.0.1:40003",
	}
	resolve := func(ref ServiceRef) (string, bool) {
		a, ok := known[ref]
		return a, ok
	}
	for _, tc := range []struct{ in, want, err string }{
		{in: "demo-redis:6379", want: "127.0.0.1:40001"},
		{in: "demo-redis.default:6379", want: "127.0.0.1:40001"},
		{in: "demo-redis.default.svc:6379", want: "127.0.0.1:40001"},
		{in: "demo-redis.default.svc.cluster.local:6379", want: "127.0.0.1:40001"},
		{in: "cache.other.svc:6379,demo-redis:6379", want: "127.0.0.1:40002,127.0.0.1:40001"},
		{in: "redis://demo-redis:6379/0", want: "redis://127.0.0.1:40001/0"},
		{in: "127.0.0.1:6379", want: "127.0.0.1:6379"},
		{in: "localhost:6379", want: "localhost:6379"},
		{in: "redis.example.com:6379", want: "redis.example.com:6379"},
		{in: "cache.other:6380", want: "cache.other:6380"},
		{in: "demo-redis:6380", err: "default/demo-redis port 6380 is not known"},
		{in: "missing:6379", err: "default/missing port 6379 is not known"},
		{in: "no address here", want: "no address here"},
		{in: "r-0.r-headless.default.svc:6379,r-1.r-headless.default.svc:6379", want: "127.0.0.1:40003,r-1.r-headless.default.svc:6379"},
		{in: "r-0.r-headless.default.svc.cluster.local:6379", want: "127.0.0.1:40003"},
		{in: "r-0.r-headless.default:6379", want: "r-0.r-headless.default:6379"},
	} {
		got, err := RewriteServiceAddrs(tc.in, "default", resolve)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("RewriteServiceAddrs(%q) error = %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("RewriteServiceAddrs(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestImageRepository(t *testing.T) {
	for in, want := range map[string]string{
		"redis:7.4-alpine":                   "redis",
		"docker.io/library/redis:7.4":        "redis",
		"registry:5000/team/redis@sha256:ab": "redis",
		"ghcr.io/hiringo/auth-operator:dev":  "auth-operator",
		"redis":                              "redis",
	} {
		if got := imageRepository(in); got != want {
			t.Errorf("imageRepository(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRedisServerProgram_BindsLoopbackPort(t *testing.T) {
	l := Launch{Args: []string{"/etc/redis/redis.conf", "--dir", "/data", "--port", "6379"}}
	if err := RedisServerProgram("/usr/bin/redis-server").Bind(&l, corev1.Container{Ports: []corev1.ContainerPort{{ContainerPort: 6379}}}, map[int32]int{6379: 41000}); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(l.Args, " ")
	if want := "/etc/redis/redis.conf --dir /data --port 41000 --bind 127.0.0.1"; got != want {
		t.Errorf("args = %q, want %q", got, want)
	}
}

func TestRedisSentinelProgram_RunsRedisServerInSentinelMode(t *testing.T) {
	images := DefaultImages("op:1", "/b/authserver", "/usr/bin/redis-server")
	p, err := images("redis:7.4-alpine", []string{"redis-sentinel", "/run/redis/sentinel.conf", "--port", "26379"})
	if err != nil || p.Path != "/usr/bin/redis-server" {
		t.Fatalf("redis-sentinel entrypoint: %v %v", p.Path, err)
	}
	l := Launch{Args: []string{"/run/redis/sentinel.conf", "--port", "26379"}}
	if err := p.Bind(&l, corev1.Container{Ports: []corev1.ContainerPort{{ContainerPort: 26379}}}, map[int32]int{26379: 41001}); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(l.Args, " "), "/run/redis/sentinel.conf --port 41001 --bind 127.0.0.1 --sentinel"; got != want {
		t.Errorf("args = %q, want %q", got, want)
	}
}

func TestAuthServerProgram_SetsListen(t *testing.T) {
	l := Launch{Args: []string{"serve", "--admin-listen=:8081"}, Env: []EnvVar{{Name: "AUTHSERVER_LISTEN", Value: ":8080"}}}
	c := corev1.Container{Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}, {Name: "admin", ContainerPort: 8081}}}
	if err := AuthServerProgram("/bin/authserver").Bind(&l, c, map[int32]int{8080: 42000, 8081: 42001}); err != nil {
		t.Fatal(err)
	}
	want := []EnvVar{{Name: "AUTHSERVER_LISTEN", Value: "127.0.0.1:42000"}, {Name: "AUTHSERVER_ADMIN_LISTEN", Value: "127.0.0.1:42001"}}
	if !reflect.DeepEqual(l.Env, want) || l.Args[1] != "--admin-listen=127.0.0.1:42001" {
		t.Errorf("env = %v, args = %q", l.Env, l.Args)
	}
	two := corev1.Container{Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}, {Name: "metrics", ContainerPort: 9090}}}
	if err := AuthServerProgram("/bin/authserver").Bind(&l, two, map[int32]int{8080: 1, 9090: 2}); err == nil {
		t.Error("two API ports were accepted for a program that listens on one")
	}
}

func TestDefaultImages(t *testing.T) {
	images := DefaultImages("ghcr.io/hiringo/auth-operator:dev", "/b/authserver", "/usr/bin/redis-server")
	if p, err := images("ghcr.io/hiringo/auth-operator:dev", []string{"/authserver", "serve"}); err != nil || p.Path != "/b/authserver" {
		t.Errorf("operator image: %v %v", p.Path, err)
	}
	if p, err := images("redis:7.4-alpine", []string{"redis-server", "/etc/redis/redis.conf"}); err != nil || p.Path != "/usr/bin/redis-server" {
		t.Errorf("redis image: %v %v", p.Path, err)
	}
	if _, err := images("ghcr.io/hiringo/auth-operator:dev", []string{"/manager"}); err == nil {
		t.Error("the manager entrypoint was mapped to the auth server")
	}
	if _, err := images("nginx:1.27", nil); err == nil {
		t.Error("an unknown image was accepted")
	}
}
