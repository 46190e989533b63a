package blacklist

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// keyRevocationPrefix starts the message announcing a revoked signing key.
const keyRevocationPrefix = "kid:"

// revokedKeysKey is the sorted set of revoked kids, scored by when the entry may go.
func (s *Store) revokedKeysKey() string { return s.prefix + "revoked-kids" }

// revokeKeysScript adds kids to the revoked set (keeping the later expiry), drops
// entries past their expiry, and announces each kid that was new. Like every
// revocation it is stored at maxmemory too.
//
//	KEYS[1] the set; ARGV: now (ms), expiry (ms), channel, kids...
const revokeKeysScript = `#!lua flags=allow-oom
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local n = 0
for i = 4, #ARGV do
  local added = redis.call('ZADD', KEYS[1], 'GT', ARGV[2], ARGV[i])
  if redis.call('ZSCORE', KEYS[1], ARGV[i]) then
    if added == 1 then n = n + 1 end
    redis.pcall('PUBLISH', ARGV[3], 'kid:' .. ARGV[i])
  end
end
return n`

// RevokeKeys records kids as revoked signing keys until the given time and announces
// each on RevocationChannel, so every verifier refuses their tokens at once, before
// its mounted key files change. An error wraps ErrUnavailable.
func (s *Store) RevokeKeys(ctx context.Context, kids []string, until time.Time) error {
	if len(kids) == 0 {
		return nil
	}
	args := []any{"eval", revokeKeysScript, 1, s.revokedKeysKey(), time.Now().UnixMilli(), until.UnixMilli(), s.RevocationChannel()}
	for _, k := range kids {
		args = append(args, k)
	}
	if err := s.pipe.do(ctx, redis.NewCmd(ctx, args...), true); err != nil {
		return fmt.Errorf("%w: recording revoked keys: %w", ErrUnavailable, err)
	}
	return nil
}

// RevokedKeys lists the signing keys revoked and not yet past their entry's expiry.
func (s *Store) RevokedKeys(ctx context.Context) ([]string, error) {
	cmd := redis.NewStringSliceCmd(ctx, "zrangebyscore", s.revokedKeysKey(), "("+strconv.FormatInt(time.Now().UnixMilli(), 10), "+inf")
	if err := s.pipe.do(ctx, cmd, false); err != nil {
		return nil, fmt.Errorf("%w: reading revoked keys: %w", ErrUnavailable, err)
	}
	return cmd.Val(), nil
}

// revokedKey returns the kid a revocation message announces, if it is one.
func revokedKey(msg string) (string, bool) {
	return strings.CutPrefix(msg, keyRevocationPrefix)
}
