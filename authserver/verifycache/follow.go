package verifycache

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"time"

	"github.com/redis/go-redis/v9"
)

// FollowOptions tune Follow.
type FollowOptions struct {
	// HealthInterval is how long the subscription may stay silent before it is
	// pinged; a ping unanswered for another interval counts as a lost subscription.
	// Default 1s.
	HealthInterval time.Duration
	// RetryInterval is the pause between resubscription attempts. Default 500ms.
	RetryInterval time.Duration
	Logger        *slog.Logger
}

// Follow subscribes to channel and applies every revocation published there until
// ctx ends. The cache is trusted only while the subscription is confirmed: when it
// is lost (an error, or a ping not answered within two health intervals) the cache
// is distrusted at once; when a new subscription is confirmed, the cache is emptied
// and trusted again.
func (c *Cache) Follow(ctx context.Context, client redis.UniversalClient, channel string, opts FollowOptions) {
	if opts.HealthInterval <= 0 {
		opts.HealthInterval = time.Second
	}
	if opts.RetryInterval <= 0 {
		opts.RetryInterval = 500 * time.Millisecond
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	for ctx.Err() == nil {
		err := c.followOnce(ctx, client, channel, opts.HealthInterval)
		c.Distrust()
		if ctx.Err() != nil {
			return
		}
		opts.Logger.Warn("revocation subscription lost; verify cache bypassed until it is back", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(opts.RetryInterval):
		}
	}
}

// followOnce holds one subscription until it fails.
func (c *Cache) followOnce(ctx context.Context, client redis.UniversalClient, channel string, health time.Duration) error {
	ps := client.Subscribe(ctx, channel)
	defer ps.Close()
	// go-redis does not watch ctx while a subscription waits for a message or a pong,
	// so a healthy subscription would otherwise be followed forever: closing it ends
	// the wait.
	stop := context.AfterFunc(ctx, func() { _ = ps.Close() })
	defer stop()
	msg, err := ps.ReceiveTimeout(ctx, 2*health)
	if err != nil {
		return err
	}
	if _, ok := msg.(*redis.Subscription); !ok {
		return errors.New("unexpected first message on the revocation subscription")
	}
	c.Resync()
	pinged := false
	for {
		msg, err := ps.ReceiveTimeout(ctx, health)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			if !isTimeout(err) {
				return err
			}
			if pinged {
				return errors.New("revocation subscription did not answer a ping")
			}
			if err := ps.Ping(ctx); err != nil {
				return err
			}
			pinged = true
			continue
		}
		pinged = false
		switch m := msg.(type) {
		case *redis.Message:
			c.metrics.revocations.Inc()
			c.Revoke(m.Payload)
		case *redis.Subscription:
			if m.Kind == "unsubscribe" {
				return errors.New("revocation channel unsubscribed")
			}
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
