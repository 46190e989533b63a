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

// BenchmarkAdd blacklists a fresh id per iteration from concurrent callers, as logout
// does, against a real Redis.
func BenchmarkAdd(b *testing.B) {
	benchmarkAdd(b, func(s *blacklist.Store, ctx context.Context, id string, until time.Time) error {
		return s.Revoke(ctx, blacklist.Tok(id), blacklist.Until(until))
	})
}

// BenchmarkAddUnbatched is BenchmarkAdd with one round trip per call: the yardstick
// that justifies the store's batching.
func BenchmarkAddUnbatched(b *testing.B) {
	benchmarkAdd(b, func(s *blacklist.Store, ctx context.Context, id string, until time.Time) error {
		return blacklist.AddUnbatched(ctx, s, id, until)
	})
}

func benchmarkAdd(b *testing.B, add func(*blacklist.Store, context.Context, string, time.Time) error) {
	srv := redistest.Start(b, redistest.Options{})
	s, _ := newStore(b, srv)
	var n atomic.Int64
	until := time.Now().Add(time.Hour)
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := add(s, context.Background(), "sig:"+strconv.FormatInt(n.Add(1), 10), until); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkContains checks ids from concurrent callers, as verify does.
func BenchmarkContains(b *testing.B) {
	srv := redistest.Start(b, redistest.Options{})
	s, _ := newStore(b, srv)
	var n atomic.Int64
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Check(context.Background(), blacklist.Tok("sig:"+strconv.FormatInt(n.Add(1)%1000, 10))); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkAddLightLoad blacklists from two callers only, where batches would hold one
// command.
func BenchmarkAddLightLoad(b *testing.B) {
	srv := redistest.Start(b, redistest.Options{})
	s, _ := newStore(b, srv)
	var n atomic.Int64
	until := time.Now().Add(time.Hour)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := s.Revoke(context.Background(), blacklist.Tok("sig:"+strconv.FormatInt(n.Add(1), 10)), blacklist.Until(until)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
