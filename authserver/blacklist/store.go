package blacklist

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// ErrAlreadyBlacklisted is returned by Add for a token that was logged out before.
var ErrAlreadyBlacklisted = errors.New("token is blacklisted")

// ErrUnavailable wraps every failure to reach or use the store. A caller that sees it
// knows nothing about the token: it must not report a logout nor accept the token.
var ErrUnavailable = errors.New("blacklist store unavailable")

// Store is the blacklist in Redis: one key per logged-out token,
// "<prefix>bl:<blacklist id>", expiring when the token could no longer verify.
type Store struct {
	client  redis.UniversalClient
	pipe    *pipeline
	prefix  string
	metrics *metrics
}

// addAndPublish sets the blacklist key like Add's SET NX PXAT and, only when it was
// set, publishes the id on the revocation channel, atomically: a revocation is
// announced exactly when it is stored.
const addAndPublish = `local ok = redis.call('SET', KEYS[1], '1', 'NX', 'PXAT', ARGV[1])
if ok then redis.call('PUBLISH', ARGV[2], ARGV[3]) end
return ok`

// storeTimeout bounds one round trip of a batch of blacklist commands.
const storeTimeout = 2 * time.Second

// DefaultReplicaAckTimeout is how long a write waits for replica acknowledgements
// unless configured otherwise: well inside the client's default 1s read timeout.
const DefaultReplicaAckTimeout = 500 * time.Millisecond

// StoreOptions tune a Store.
type StoreOptions struct {
	// Prefix starts every key and channel name the store uses.
	Prefix string
	// Registerer receives the store's metrics; may be nil.
	Registerer prometheus.Registerer
	// ReplicaAcks, when Min > 0, makes Add fail with ErrReplicasBehind (wrapped in
	// ErrUnavailable) unless that many replicas acknowledged the write. Timeout
	// defaults to DefaultReplicaAckTimeout. Not for a Redis Cluster, where the WAIT
	// could reach another shard than the write.
	ReplicaAcks ReplicaAcks
}

// NewStore uses client as opts say. Concurrent calls share Redis round trips (see
// pipeline) until Close.
func NewStore(client redis.UniversalClient, opts StoreOptions) *Store {
	if opts.ReplicaAcks.Min > 0 && opts.ReplicaAcks.Timeout <= 0 {
		opts.ReplicaAcks.Timeout = DefaultReplicaAckTimeout
	}
	return &Store{
		client:  client,
		pipe:    newPipeline(client, storeTimeout, opts.ReplicaAcks),
		prefix:  opts.Prefix,
		metrics: newMetrics(opts.Registerer),
	}
}

// Close stops the store's pipeline workers and waits for them. Calls during or after
// it fail with an error wrapping ErrUnavailable rather than wait; the client is the
// caller's to close.
func (s *Store) Close() { s.pipe.shutdown() }

// RevocationChannel is the pub/sub channel on which revoked ids are announced.
func (s *Store) RevocationChannel() string { return s.prefix + "revocations" }

// Client is the Redis client the store uses.
func (s *Store) Client() redis.UniversalClient { return s.client }

// Key is the Redis key of a blacklist id.
func (s *Store) Key(id string) string { return s.prefix + "bl:" + id }

// Add blacklists id until the given time with one atomic SET NX PXAT and, when the
// key was new, publishes id on RevocationChannel in the same script, so that replicas
// caching verified tokens drop it; every replica publishes, whatever its own cache
// setting, so a rolling change of that setting loses no revocation. It returns
// ErrAlreadyBlacklisted when the id was already there and an error wrapping
// ErrUnavailable when Redis did not answer or, with StoreOptions.ReplicaAcks, too few
// replicas acknowledged the write.
func (s *Store) Add(ctx context.Context, id string, until time.Time) error {
	err := s.pipe.do(ctx, redis.NewCmd(ctx, "eval", addAndPublish, 1, s.Key(id), until.UnixMilli(), s.RevocationChannel(), id), true)
	switch {
	case err == nil:
		s.metrics.ops.WithLabelValues("add", "added").Inc()
		return nil
	case errors.Is(err, redis.Nil):
		s.metrics.ops.WithLabelValues("add", "exists").Inc()
		return ErrAlreadyBlacklisted
	case errors.Is(err, ErrReplicasBehind):
		s.metrics.ops.WithLabelValues("add", "replicas_behind").Inc()
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	default:
		s.metrics.ops.WithLabelValues("add", "error").Inc()
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
}

// Contains reports whether id is blacklisted. An error wraps ErrUnavailable.
func (s *Store) Contains(ctx context.Context, id string) (bool, error) {
	cmd := redis.NewIntCmd(ctx, "exists", s.Key(id))
	err := s.pipe.do(ctx, cmd, false)
	n := cmd.Val()
	if err != nil {
		s.metrics.ops.WithLabelValues("check", "error").Inc()
		return false, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if n > 0 {
		s.metrics.ops.WithLabelValues("check", "listed").Inc()
		return true, nil
	}
	s.metrics.ops.WithLabelValues("check", "clear").Inc()
	return false, nil
}

// Ping checks that Redis answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return nil
}

// metrics are the blacklist's Prometheus series.
type metrics struct {
	ops         *prometheus.CounterVec
	revocations prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{ops: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "authserver_blacklist_operations_total",
		Help: "Blacklist operations by kind (add, check) and result (added, exists, replicas_behind, listed, clear, error).",
	}, []string{"op", "result"}),
		revocations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "authserver_revocations_received_total",
			Help: "Revocations received from other replicas (and this one) over Redis pub/sub.",
		}),
	}
	for _, r := range []string{"added", "exists", "replicas_behind", "error"} {
		m.ops.WithLabelValues("add", r)
	}
	for _, r := range []string{"listed", "clear", "error"} {
		m.ops.WithLabelValues("check", r)
	}
	if reg != nil {
		reg.MustRegister(m.ops, m.revocations)
	}
	return m
}

// ErrEvictingPolicy is returned by CheckEvictionPolicy when Redis may evict blacklist
// entries before they expire, which would make logged-out tokens valid again.
var ErrEvictingPolicy = errors.New("Redis may evict blacklist entries (maxmemory-policy is not noeviction): a logged-out token could become valid again")

// CheckEvictionPolicy reads Redis's maxmemory-policy. Every blacklist entry has an
// expiry, so every policy but noeviction (volatile-* as much as allkeys-*) may drop
// entries early; it then returns ErrEvictingPolicy naming the policy. When Redis does
// not allow CONFIG GET (as some managed services), it returns Redis's reply as the
// error; when Redis cannot be reached, an error wrapping ErrUnavailable.
func (s *Store) CheckEvictionPolicy(ctx context.Context) error {
	res, err := s.client.ConfigGet(ctx, "maxmemory-policy").Result()
	var reply redis.Error
	switch {
	case errors.As(err, &reply):
		return fmt.Errorf("reading Redis maxmemory-policy: %w", err)
	case err != nil:
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	policy, ok := res["maxmemory-policy"]
	if !ok || policy == "noeviction" {
		return nil
	}
	return fmt.Errorf("%w: it is %s", ErrEvictingPolicy, policy)
}
