package blacklist

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hiringo/auth-operator/authserver/redistest"
)

// BenchmarkAddUnbatched is BenchmarkAdd without the store's batching: each caller
// sends its own SET NX PXAT script through go-redis's connection pool. It is the
// yardstick that justifies the pipeline.
func BenchmarkAddUnbatched(b *testing.B) {
	srv := redistest.Start(b, redistest.Options{})
	client, err := NewClient(ClientConfig{Addrs: []string{srv.Addr}})
	if err != nil {
		b.Fatal(err)
	}
	defer client.Close()
	s := NewStore(client, StoreOptions{Prefix: "bench:"})
	defer s.Close()
	var n atomic.Int64
	until := time.Now().Add(time.Hour).UnixMilli()
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			id := "sig:" + strconv.FormatInt(n.Add(1), 10)
			if err := client.Process(ctx, redis.NewCmd(ctx, "eval", addAndPublish, 1, s.Key(id), until, s.RevocationChannel(), id)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
