package redisconf_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/hiringo/auth-operator/authserver/blacklist"
	"github.com/hiringo/auth-operator/authserver/httpapi"
	"github.com/hiringo/auth-operator/authserver/sessions"
	"github.com/hiringo/auth-operator/authserver/token"
	"github.com/hiringo/auth-operator/internal/redisconf"
	"github.com/hiringo/auth-operator/internal/testutil/redistest"
	"github.com/hiringo/auth-operator/internal/testutil/tokentest"
)

const password = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestValidatePassword(t *testing.T) {
	for _, ok := range []string{password, "Abc-123_xyz.~+/=!#$%&()*,:;<>?@[]^{|}"} {
		if err := redisconf.ValidatePassword(ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for _, bad := range []string{
		"", "short",
		password + "\nreplicaof evil.example.com 6379",
		password + " extra",
		password + "\"", password + "'", password + `\`, password + "\t", password + "é",
		strings.Repeat("a", 513),
	} {
		err := redisconf.ValidatePassword(bad)
		if !errors.Is(err, redisconf.ErrInvalidPassword) {
			t.Errorf("%q accepted (err %v)", bad, err)
			continue
		}
		if len(bad) >= 8 && strings.Contains(err.Error(), bad[:8]) {
			t.Errorf("the error %q shows the password", err)
		}
	}
	if _, err := redisconf.Render(password+"\nreplicaof evil 6379", 0); !errors.Is(err, redisconf.ErrInvalidPassword) {
		t.Errorf("Render wrote an injected directive: %v", err)
	}
}

func TestMaxMemory_FromTheMemoryLimit(t *testing.T) {
	limit := resource.MustParse("256Mi")
	if got, want := redisconf.MaxMemory(&limit), int64(256<<20)/100*60; got != want {
		t.Errorf("MaxMemory(256Mi) = %d, want %d", got, want)
	}
	if got := redisconf.MaxMemory(nil); got != 0 {
		t.Errorf("MaxMemory(no limit) = %d, want 0", got)
	}
	conf, err := redisconf.Render(password, redisconf.MaxMemory(&limit))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(conf, "\nmaxmemory 161061240\n") || !strings.Contains(conf, "maxmemory-policy noeviction\n") {
		t.Errorf("conf = %q", conf)
	}
	if conf, _ := redisconf.Render(password, 0); strings.Contains(conf, "maxmemory ") {
		t.Errorf("no limit, conf = %q", conf)
	}
}

// TestRender_FullRedisStillStoresLogoutsAndStaysUp runs a real redis-server on the
// rendered redis.conf of a container limited to 16Mi and fills it: a logout is still
// stored and answered 200 (revocations run with allow-oom; only new sessions are
// refused, see authserver/httpapi TestSessions_AFullStoreStillLetsUsersLogOut), Redis
// stays up and the token is refused from then on, as is one logged out before.
func TestRender_FullRedisStillStoresLogoutsAndStaysUp(t *testing.T) {
	dir := t.TempDir()
	limit := resource.MustParse("16Mi")
	conf, err := redisconf.Render(password, redisconf.MaxMemory(&limit))
	if err != nil {
		t.Fatal(err)
	}
	confFile, pwFile := filepath.Join(dir, "redis.conf"), filepath.Join(dir, "password")
	for name, content := range map[string]string{confFile: conf, pwFile: password} {
		if err := os.WriteFile(name, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	srv := redistest.Start(t, redistest.Options{ConfigFile: confFile})
	client, err := blacklist.NewClient(blacklist.ClientConfig{Addrs: []string{srv.Addr}, PasswordFile: pwFile, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	store := blacklist.NewStore(client, blacklist.StoreOptions{Prefix: "full:"})
	t.Cleanup(store.Close)
	set := tokentest.NewSet(t)
	keys := tokentest.Static(t, set)
	api, err := httpapi.New(httpapi.Config{
		Keys: keys,
		Sessions: sessions.New(sessions.Config{
			Verifier: token.NewVerifier(keys, token.VerifierOptions{Leeway: 30 * time.Second}),
			Store:    store,
		}),
		Store: store,
	})
	if err != nil {
		t.Fatal(err)
	}
	call := func(method, path, tok string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, req)
		return rec
	}
	before := tokentest.Issue(t, set, 15*time.Minute)
	if rec := call(http.MethodPost, "/auth/logout", before); rec.Code != http.StatusOK {
		t.Fatalf("logout before the fill: %d %s", rec.Code, rec.Body)
	}

	ctx := context.Background()
	filler := redis.NewClient(&redis.Options{Addr: srv.Addr, Password: password})
	t.Cleanup(func() { filler.Close() })
	// Large values first, then small ones: Redis counts a command's own query buffer, so
	// it refuses a large write while a small one (a logout) still fits. Twice the container
	// limit is as much as the test writes.
	n, written := 0, 0
	for _, size := range []int{256 << 10, 1 << 10, 64} {
		value := strings.Repeat("x", size)
		for full := false; !full; {
			if int64(written) > 2*limit.Value() {
				t.Fatalf("Redis accepted %d bytes under a %s limit: maxmemory is not in effect", written, limit.String())
			}
			n++
			written += size
			err := filler.Set(ctx, "filler:"+strconv.Itoa(n), value, 0).Err()
			switch {
			case err == nil:
			case strings.HasPrefix(err.Error(), "OOM"):
				full = true
			default:
				t.Fatalf("filling Redis: %v", err)
			}
		}
	}

	after := tokentest.Issue(t, set, 16*time.Minute)
	if rec := call(http.MethodPost, "/auth/logout", after); rec.Code != http.StatusOK {
		t.Errorf("logout into a full Redis: %d %s, want 200", rec.Code, rec.Body)
	}
	if err := filler.Ping(ctx).Err(); err != nil || srv.Pid() == 0 {
		t.Fatalf("Redis is not up after the fill: %v", err)
	}
	if err := filler.Set(ctx, "filler:more", "x", 0).Err(); err == nil || !strings.HasPrefix(err.Error(), "OOM") {
		t.Fatalf("a plain write after the logout: %v, want OOM (Redis is full)", err)
	}
	for _, tok := range []string{before, after} {
		if rec := call(http.MethodGet, "/auth/verify", tok); rec.Code != http.StatusUnauthorized ||
			!strings.Contains(rec.Body.String(), "token is blacklisted") {
			t.Errorf("verify of a logged-out token: %d %s", rec.Code, rec.Body)
		}
	}
}

// TestMemoryFor_SizesTheContainerForItsSessions: maxmemory of the returned limit holds
// the base plus the bytes of every session, rounded up to a MiB.
func TestMemoryFor_SizesTheContainerForItsSessions(t *testing.T) {
	for _, tc := range []struct {
		sessions int64
		want     string
	}{
		{1000, "30Mi"},
		{100000, "271Mi"},
		{1000000, "2469Mi"},
	} {
		got := redisconf.MemoryFor(tc.sessions)
		if got.String() != tc.want {
			t.Errorf("MemoryFor(%d) = %s, want %s", tc.sessions, got.String(), tc.want)
		}
		if room := redisconf.MaxMemory(&got); room < redisconf.BaseMemory+tc.sessions*redisconf.BytesPerSession {
			t.Errorf("MemoryFor(%d) = %s leaves maxmemory %d, less than the sessions need", tc.sessions, got.String(), room)
		}
	}
}
