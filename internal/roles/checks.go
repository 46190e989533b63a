package roles

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/hiringo/auth-operator/authserver/blacklist"
)

// checks are the tasks that ask Redis, once it answers, about settings that make it
// unsafe or unusable, and log what they find: an eviction policy that may drop
// revocations, a version too old for the store's scripts, a user that may not publish
// revocations to other replicas.
func checks(bl *blacklist.Store, log *slog.Logger) []func(context.Context) error {
	return []func(context.Context) error{
		untilAnswered(bl.CheckEvictionPolicy, func(ctx context.Context, err error) bool {
			switch {
			case err == nil:
			case errors.Is(err, blacklist.ErrEvictingPolicy):
				log.Warn("unsafe Redis configuration: set maxmemory-policy noeviction", "err", err)
			case errors.Is(err, blacklist.ErrUnavailable) || ctx.Err() != nil:
				return false
			default:
				log.Info("cannot read Redis maxmemory-policy; make sure it is noeviction", "err", err)
			}
			return true
		}),
		untilAnswered(bl.CheckVersion, func(_ context.Context, err error) bool {
			switch {
			case err == nil:
			case errors.Is(err, blacklist.ErrRedisTooOld):
				log.Error("unsupported Redis: logouts, refreshes and logins fail until it is upgraded", "err", err)
			case !errors.Is(err, blacklist.ErrUnavailable):
				log.Info("cannot read the Redis version; make sure it is 7.0 or later", "err", err)
			default:
				return false
			}
			return true
		}),
		untilAnswered(bl.CheckPublish, func(_ context.Context, err error) bool {
			switch {
			case err == nil:
			case errors.Is(err, blacklist.ErrCannotPublish):
				log.Error("unsafe Redis configuration: revocations cannot be announced to other replicas", "err", err)
			default:
				return false
			}
			return true
		}),
	}
}

// untilAnswered is a task that runs check every 5 seconds, each within 2, until done
// says its answer settles it or ctx ends.
func untilAnswered(check func(context.Context) error, done func(context.Context, error) bool) func(context.Context) error {
	return func(ctx context.Context) error {
		for {
			checkCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
			err := check(checkCtx)
			cancel()
			if done(ctx, err) {
				return nil
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(5 * time.Second):
			}
		}
	}
}
