package blacklist

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"time"

	"github.com/redis/go-redis/v9"
)

// RevocationSink is what Follow keeps in step with the revocation channel: the
// verified-token cache.
type RevocationSink interface {
	// Revoke applies one published revocation.
	Revoke(id string)
	// Distrust is called when revocations may be missed from now on.
	Distrust()
	// Resync is called when a new subscription is confirmed: anything held may have
	// been revoked while none was.
	Resync()
	// RevokeKeys takes revoked signing keys out of use: announced ones as they come,
	// and every recorded one at each confirmed subscription.
	RevokeKeys(kids ...string)
}

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

// Follow subscribes to the store's revocation channel and hands every revocation
// published there to sink until ctx ends. sink is trusted only while the
// subscription is confirmed: when it is lost (an error, or a ping not answered
// within two health intervals) sink is distrusted at once; when a new subscription
// is confirmed, sink is resynced.
func (s *Store) Follow(ctx context.Context, sink RevocationSink, opts FollowOptions) {
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
		err := s.followOnce(ctx, sink, opts.HealthInterval)
		sink.Distrust()
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
func (s *Store) followOnce(ctx context.Context, sink RevocationSink, health time.Duration) error {
	ps := s.client.Subscribe(ctx, s.RevocationChannel())
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
	kids, err := s.RevokedKeys(ctx)
	if err != nil {
		return err
	}
	sink.RevokeKeys(kids...)
	sink.Resync()
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
			s.metrics.revocations.Inc()
			if kid, ok := revokedKey(m.Payload); ok {
				sink.RevokeKeys(kid)
				continue
			}
			sink.Revoke(m.Payload)
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
