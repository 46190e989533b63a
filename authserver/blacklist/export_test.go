package blacklist

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
)

// AddUnbatched is Add without the store's batching: one round trip per call through
// go-redis's connection pool. Benchmarks compare the two.
func AddUnbatched(ctx context.Context, s *Store, id string, until time.Time) error {
	return s.client.Process(ctx, redis.NewCmd(ctx, "eval", addAndPublish, 1, s.Key(id), until.UnixMilli(), s.RevocationChannel(), id))
}
