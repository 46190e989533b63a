package blacklist

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// ErrRedisTooOld is returned by CheckVersion for a Redis older than 7.0: the store's
// scripts declare flags (allow-oom, no-writes) that older servers refuse, so every
// logout, refresh and issuance would fail (503).
var ErrRedisTooOld = errors.New("Redis 7.0 or later is needed (the session store's scripts use script flags)")

// CheckVersion reads redis_version from INFO server: ErrRedisTooOld, naming the
// version, for one before 7.0. A Redis that hides INFO is Redis' reply as the error;
// an unreachable one wraps ErrUnavailable.
func (s *Store) CheckVersion(ctx context.Context) error {
	info, err := s.client.Info(ctx, "server").Result()
	var reply redis.Error
	switch {
	case errors.As(err, &reply):
		return fmt.Errorf("reading the Redis version: %w", err)
	case err != nil:
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	version := redisVersion(info)
	major, _, _ := strings.Cut(version, ".")
	if n, err := strconv.Atoi(major); err == nil && n < 7 {
		return fmt.Errorf("%w: it is %s", ErrRedisTooOld, version)
	}
	return nil
}

// redisVersion is redis_version of an INFO reply; "" when absent.
func redisVersion(info string) string {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:"); ok {
			return v
		}
	}
	return ""
}
