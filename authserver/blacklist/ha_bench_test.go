package blacklist_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hiringo/auth-operator/authserver/blacklist"
	"github.com/hiringo/auth-operator/internal/testutil/redistest"
)

// BenchmarkLogoutByMode is logout's write (Revoke of a fresh token) from 32 concurrent
// callers on real processes: one standalone Redis, and the Sentinel setup the operator
// runs for highAvailability (a primary, two replicas, three Sentinels, reached through
// the Sentinels) with each write acknowledged by one replica (WAIT 1), the
// --redis-min-replicas-acked 1 default. docs/high-availability.md reports the figures.
func BenchmarkLogoutByMode(b *testing.B) {
	b.Run("standalone", func(b *testing.B) {
		srv := redistest.Start(b, redistest.Options{})
		benchmarkLogout(b, blacklist.ClientConfig{Mode: blacklist.ModeStandalone, Addrs: []string{srv.Addr}}, blacklist.ReplicaAcks{})
	})
	b.Run("sentinel-acked-1", func(b *testing.B) {
		g := redistest.StartGroup(b, redistest.GroupOptions{Replicas: 2, Sentinels: 3})
		benchmarkLogout(b, blacklist.ClientConfig{Mode: blacklist.ModeSentinel, Addrs: g.SentinelAddrs(), MasterName: g.MasterName},
			blacklist.ReplicaAcks{Min: 1, Timeout: blacklist.DefaultReplicaAckTimeout})
	})
}

func benchmarkLogout(b *testing.B, cfg blacklist.ClientConfig, acks blacklist.ReplicaAcks) {
	cfg.Timeout = 2 * time.Second
	client, err := blacklist.NewClient(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { client.Close() })
	s := blacklist.NewStore(client, blacklist.StoreOptions{Prefix: "bench:", ReplicaAcks: acks})
	b.Cleanup(s.Close)
	var n atomic.Int64
	until := time.Now().Add(time.Hour)
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := s.Revoke(context.Background(), blacklist.Tok("sig:"+strconv.FormatInt(n.Add(1), 10)), blacklist.Until(until)); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "logouts/s")
}
