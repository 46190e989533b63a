package blacklist

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// ErrRevoked is returned for a token that was revoked before: by itself,
// its stamp, its session, its user's cutoff or the user's single-session marker.
var ErrRevoked = errors.New("token is blacklisted")

// ErrUnavailable wraps every failure to reach or use the store. A caller that sees it
// knows nothing about the token: it must not report a logout nor accept the token.
var ErrUnavailable = errors.New("blacklist store unavailable")

// ErrNotStored is wrapped in the error of a write that Redis accepted but did not keep,
// because the expiry it was given had already passed by Redis' clock (Redis answers OK
// to SET … PXAT <past>): the server's clock is far behind Redis'.
var ErrNotStored = errors.New("Redis stored nothing: the entry's expiry had already passed by its clock")

// ErrStoreFull wraps (with ErrUnavailable) the error of a new session that Redis
// refused because it is at its maxmemory: revocations are still stored there, new
// logins are not.
var ErrStoreFull = errors.New("session store full: Redis is at its maxmemory")

// Store is the revocation store in Redis. Per user (all under the user's hash tag):
// one record per session holding its current stamp, a per-token entry for logged-out
// tokens without a session, a per-stamp entry for logged-out stamps, a per-session
// entry for sessions ended by refresh-token reuse, the user's cutoff and, with
// single-session issuance, the user's only session; each expires when no token it
// covers could still verify. A refresh rewrites its session's record: the store holds
// O(sessions) entries, never O(refreshes).
type Store struct {
	client  redis.UniversalClient
	pipe    *pipeline
	prefix  string
	metrics *metrics
	log     *slog.Logger
	// cluster says that one command may not read keys of several users (their hash
	// slots differ), nor a user's keys and a key of the previous layout.
	cluster bool
	// cutoff is the NotBefore of the latest detected data loss (Unix seconds, 0 for
	// none): tokens issued before it are refused without asking Redis.
	cutoff atomic.Int64
	// legacyUntil is when entries of the previous release's key layout stop mattering
	// (Unix milliseconds, 0 for none); until then Check reads them too.
	legacyUntil atomic.Int64
	// genMu guards generation, the store generation this server holds, and
	// generationRaw, its marker as last read or written.
	genMu         sync.Mutex
	generation    Generation
	generationRaw string
}

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
	// ReplicaAcks, when Min > 0, makes a write fail with ErrReplicasBehind (wrapped in
	// ErrUnavailable) unless that many replicas acknowledged it. Timeout defaults to
	// DefaultReplicaAckTimeout. Not for a Redis Cluster, where the WAIT could reach
	// another shard than the write.
	ReplicaAcks ReplicaAcks
	// KeysCapacity is the keys the store is sized for, exported as
	// authserver_redis_keys_capacity beside authserver_redis_keys; 0 when unknown.
	KeysCapacity int64
	// Logger receives warnings such as a revocation stored but not published.
	Logger *slog.Logger
	// Traced says that client makes spans (tracing.InstrumentRedis): each round trip
	// then runs under the span of the request that opened its batch. Off, nothing of a
	// request's context is kept.
	Traced bool
}

// NewStore uses client as opts say. Concurrent calls share Redis round trips (see
// pipeline) until Close.
func NewStore(client redis.UniversalClient, opts StoreOptions) *Store {
	if opts.ReplicaAcks.Min > 0 && opts.ReplicaAcks.Timeout <= 0 {
		opts.ReplicaAcks.Timeout = DefaultReplicaAckTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	_, cluster := client.(*redis.ClusterClient)
	metrics := newMetrics(opts.Registerer)
	metrics.memory.keysCapacity.Set(float64(opts.KeysCapacity))
	return &Store{
		client:  client,
		pipe:    newPipeline(client, storeTimeout, opts.ReplicaAcks, opts.Traced),
		prefix:  opts.Prefix,
		metrics: metrics,
		log:     opts.Logger,
		cluster: cluster,
	}
}

// Close stops the store's pipeline workers and waits for them. Calls during or after
// it fail with an error wrapping ErrUnavailable rather than wait; the client is the
// caller's to close.
func (s *Store) Close() { s.pipe.shutdown() }

// RevocationChannel is the pub/sub channel on which revoked ids are announced.
func (s *Store) RevocationChannel() string { return s.prefix + "revocations" }

// script runs one of the store's scripts as a write and returns its integer reply,
// want values long. behind reports a reply whose write too few replicas acknowledged
// (ErrReplicasBehind): err is then nil and the caller decides what that means for
// its write. A script Redis refused at its maxmemory wraps ErrStoreFull.
//
// The script runs by its SHA-1 from Redis' script cache (EVALSHA): its source is
// sent and hashed only when Redis does not have it yet (NOSCRIPT, which writes
// nothing), after a restart or a failover.
func (s *Store) script(ctx context.Context, sc storeScript, keys []string, args []any, want int) (reply []int64, behind bool, err error) {
	cmdArgs := make([]any, 3, 3+len(keys)+len(args))
	cmdArgs[0], cmdArgs[1], cmdArgs[2] = "evalsha", sc.sha, len(keys)
	for _, k := range keys {
		cmdArgs = append(cmdArgs, k)
	}
	cmdArgs = append(cmdArgs, args...)
	cmd := redis.NewSliceCmd(ctx, cmdArgs...)
	err = s.pipe.do(ctx, cmd, true)
	if redis.HasErrorPrefix(err, "NOSCRIPT") {
		cmdArgs[0], cmdArgs[1] = "eval", sc.src
		cmd = redis.NewSliceCmd(ctx, cmdArgs...)
		err = s.pipe.do(ctx, cmd, true)
	}
	vals := cmd.Val()
	behind = errors.Is(err, ErrReplicasBehind) && len(vals) > 0
	if err != nil && !behind {
		if strings.HasPrefix(err.Error(), "OOM ") {
			return nil, false, fmt.Errorf("%w: %w", ErrStoreFull, err)
		}
		return nil, false, err
	}
	reply = make([]int64, want)
	for i := 0; i < len(vals) && i < want; i++ {
		n, ok := vals[i].(int64)
		if !ok {
			return nil, false, fmt.Errorf("unexpected script reply %v", vals)
		}
		reply[i] = n
	}
	return reply, behind, nil
}

// outcome counts a revocation and turns its failure into the error callers see. A
// revocation that stored nothing (code 0: it was there before) needs no replica's
// acknowledgement.
func (s *Store) outcome(op string, code int64, published, behind bool, err error) error {
	switch {
	case err != nil:
		s.metrics.ops.WithLabelValues(op, "error").Inc()
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	case code < 0:
		s.metrics.ops.WithLabelValues(op, "not_stored").Inc()
		return fmt.Errorf("%w: %w", ErrUnavailable, ErrNotStored)
	case code == 0:
		s.metrics.ops.WithLabelValues(op, "exists").Inc()
		return nil
	case behind:
		s.metrics.ops.WithLabelValues(op, "replicas_behind").Inc()
		return fmt.Errorf("%w: %w", ErrUnavailable, ErrReplicasBehind)
	}
	s.published(op, published)
	s.metrics.ops.WithLabelValues(op, "added").Inc()
	return nil
}

// published logs a revocation that was stored but not announced.
func (s *Store) published(op string, ok bool) {
	if ok {
		return
	}
	s.metrics.ops.WithLabelValues(op, "unpublished").Inc()
	s.log.Error("revocation stored but not announced: the Redis user may not PUBLISH on the revocation channel; other replicas' verify caches keep the token until it expires",
		"channel", s.RevocationChannel())
}

// newNonce is a fresh random value that identifies one write across client retries.
func newNonce() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// Ping checks that Redis answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return nil
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
