package blacklist_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hiringo/auth-operator/authserver/blacklist"
	"github.com/hiringo/auth-operator/internal/testutil/poll"
	"github.com/hiringo/auth-operator/internal/testutil/redistest"
)

// TestWatchMemory_ExportsUsedMaxAndKeys runs WatchMemory against a real redis-server
// with a maxmemory: the gauges show its used_memory, its maxmemory and the number of
// keys, and follow new keys.
func TestWatchMemory_ExportsUsedMaxKeysAndCapacity(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	if _, err := redistest.Command(srv.Addr, "CONFIG", "SET", "maxmemory", strconv.Itoa(64<<20)); err != nil {
		t.Fatal(err)
	}
	client, err := blacklist.NewClient(blacklist.ClientConfig{Addrs: []string{srv.Addr}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	reg := prometheus.NewRegistry()
	s := blacklist.NewStore(client, blacklist.StoreOptions{Prefix: "mem:", Registerer: reg, KeysCapacity: 4000})
	t.Cleanup(s.Close)
	if c := gaugeValue(t, reg, "authserver_redis_keys_capacity"); c != 4000 {
		t.Errorf("authserver_redis_keys_capacity = %v, want the 4000 the store is sized for", c)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.WatchMemory(ctx, blacklist.MemoryOptions{Interval: 50 * time.Millisecond})
	}()
	t.Cleanup(func() {
		stop()
		<-done
	})
	for i := range 5 {
		if err := s.Revoke(context.Background(), blacklist.Tok("sig:"+strconv.Itoa(i)), blacklist.Until(time.Now().Add(time.Hour))); err != nil {
			t.Fatal(err)
		}
	}
	poll.UntilTrue(t, 5*time.Second, "the gauges to show five keys", func() bool {
		return gaugeValue(t, reg, "authserver_redis_keys") == 5
	})
	if used := gaugeValue(t, reg, "authserver_redis_used_memory_bytes"); used < 100<<10 {
		t.Errorf("authserver_redis_used_memory_bytes = %v, want Redis' used_memory", used)
	}
	if limit := gaugeValue(t, reg, "authserver_redis_max_memory_bytes"); limit != 64<<20 {
		t.Errorf("authserver_redis_max_memory_bytes = %v, want %d", limit, 64<<20)
	}
}

func gaugeValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name {
			return f.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("metric %s not registered", name)
	return 0
}
