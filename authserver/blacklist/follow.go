package blacklist

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
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
	// HealthInterval is how often a canary is published through the write path; each
	// must arrive on the subscription within two intervals, or the subscription counts
	// as lost. Default 1s.
	HealthInterval time.Duration
	// RetryInterval is the pause between resubscription attempts. Default 500ms.
	RetryInterval time.Duration
	Logger        *slog.Logger
}

// canaryPrefix starts the nonces Follow publishes to prove its subscription
// end to end; followers take no revocation from them.
const canaryPrefix = "canary:"

// errCanaryLost ends a subscription that looks healthy but no longer receives what is
// published where the writes go: after a failover, the pubsub connection can stay on
// a demoted or partitioned node that nothing publishes to.
var errCanaryLost = errors.New("the canary published through the write path did not arrive on the revocation subscription")

// Follow subscribes to the store's revocation channel and hands every revocation
// published there to sink until ctx ends. sink is trusted only while an end-to-end
// canary arrives: every health interval a nonce is published through the same
// client as the writes (so to the current primary) and must be seen on the
// subscription within two intervals. A subscription is trusted (sink resynced) once
// its first canary arrived; when one does not, or the subscription fails, sink is
// distrusted at once and a new subscription is made, which dials the primary the
// client knows now.
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
	lastErr := ""
	for ctx.Err() == nil {
		trusted, err := s.followOnce(ctx, sink, opts.HealthInterval)
		sink.Distrust()
		if ctx.Err() != nil {
			return
		}
		// A cause that repeats (Redis down, a user that may not PUBLISH the canary)
		// is logged once, not at every retry.
		level := slog.LevelWarn
		if err.Error() == lastErr && !trusted {
			level = slog.LevelDebug
		}
		lastErr = err.Error()
		opts.Logger.Log(ctx, level, "revocation subscription lost; verify cache bypassed until it is back", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(opts.RetryInterval):
		}
	}
}

// followOnce holds one subscription until it fails; trusted reports whether it was
// trusted before.
func (s *Store) followOnce(ctx context.Context, sink RevocationSink, health time.Duration) (trusted bool, err error) {
	ps := s.client.Subscribe(ctx, s.RevocationChannel())
	defer ps.Close()
	// go-redis does not watch ctx while a subscription waits for a message, so a
	// healthy subscription would otherwise be followed forever: closing it ends the
	// wait.
	stop := context.AfterFunc(ctx, func() { _ = ps.Close() })
	defer stop()
	msg, err := ps.ReceiveTimeout(ctx, 2*health)
	if err != nil {
		return false, err
	}
	if _, ok := msg.(*redis.Subscription); !ok {
		return false, errors.New("unexpected first message on the revocation subscription")
	}
	var canary canaryState
	for {
		now := time.Now()
		if canary.lost(now, health) {
			return trusted, errCanaryLost
		}
		if canary.due(now, health) {
			if err := s.publishCanary(ctx, &canary, health); err != nil {
				return trusted, err
			}
			continue
		}
		msg, err := ps.ReceiveTimeout(ctx, max(canary.next(health).Sub(now), time.Millisecond))
		if ctx.Err() != nil {
			return trusted, ctx.Err()
		}
		if err != nil {
			if isTimeout(err) {
				continue
			}
			return trusted, err
		}
		switch m := msg.(type) {
		case *redis.Message:
			if strings.HasPrefix(m.Payload, canaryPrefix) {
				if !canary.seen(m.Payload) || trusted {
					continue
				}
				// The first canary proves the subscription sees the writes' node:
				// anything held may have been revoked while none did.
				kids, err := s.RevokedKeys(ctx)
				if err != nil {
					return trusted, err
				}
				sink.RevokeKeys(kids...)
				sink.Resync()
				trusted = true
				continue
			}
			s.metrics.revocations.Inc()
			if kid, ok := revokedKey(m.Payload); ok {
				sink.RevokeKeys(kid)
				continue
			}
			sink.Revoke(m.Payload)
		case *redis.Subscription:
			if m.Kind == "unsubscribe" {
				return trusted, errors.New("revocation channel unsubscribed")
			}
		}
	}
}

// publishCanary publishes a fresh canary through the store's client.
func (s *Store) publishCanary(ctx context.Context, c *canaryState, health time.Duration) error {
	nonce := canaryPrefix + newNonce()
	pubCtx, cancel := context.WithTimeout(ctx, health)
	defer cancel()
	if err := s.client.Publish(pubCtx, s.RevocationChannel(), nonce).Err(); err != nil {
		return fmt.Errorf("publishing the subscription's canary: %w", err)
	}
	c.sent(nonce, time.Now())
	return nil
}

// canaryState is the one canary in flight: a new one is published a health interval
// after the previous one was, once that one arrived; one that has not arrived two
// intervals after it was published is lost.
type canaryState struct {
	nonce   string
	at      time.Time
	arrived bool
}

func (c *canaryState) sent(nonce string, at time.Time) {
	c.nonce, c.at, c.arrived = nonce, at, false
}

// seen records payload's arrival and reports whether it is the canary in flight.
func (c *canaryState) seen(payload string) bool {
	if c.arrived || payload != c.nonce {
		return false
	}
	c.arrived = true
	return true
}

// due reports whether the next canary is to be published now.
func (c *canaryState) due(now time.Time, health time.Duration) bool {
	return c.nonce == "" || c.arrived && !now.Before(c.at.Add(health))
}

// lost reports whether the canary in flight is overdue.
func (c *canaryState) lost(now time.Time, health time.Duration) bool {
	return c.nonce != "" && !c.arrived && now.After(c.at.Add(2*health))
}

// next is when the loop has something to do without a message: publish the next
// canary, or give up on the one in flight.
func (c *canaryState) next(health time.Duration) time.Time {
	if c.arrived {
		return c.at.Add(health)
	}
	return c.at.Add(2 * health)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
