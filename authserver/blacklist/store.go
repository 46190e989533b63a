package blacklist

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// ErrAlreadyBlacklisted is returned for a token that was revoked before: by itself,
// its stamp, its session or its user's cutoff.
var ErrAlreadyBlacklisted = errors.New("token is blacklisted")

// ErrReuse is returned by Rotate for a stamp that was rotated before: the refresh
// token was used twice, and the whole session is revoked now.
var ErrReuse = errors.New("refresh token reused: session revoked")

// ErrUnavailable wraps every failure to reach or use the store. A caller that sees it
// knows nothing about the token: it must not report a logout nor accept the token.
var ErrUnavailable = errors.New("blacklist store unavailable")

// ErrNotStored is wrapped in the error of a write that Redis accepted but did not keep,
// because the expiry it was given had already passed by Redis' clock (Redis answers OK
// to SET … PXAT <past>): the server's clock is far behind Redis'.
var ErrNotStored = errors.New("Redis stored nothing: the entry's expiry had already passed by its clock")

// Store is the revocation store in Redis. Per user (all under the user's hash tag):
// a per-token entry for tokens without a session, a per-stamp and a per-session entry
// for tokens of a session, and the user's cutoff; each expires when no token it
// covers could still verify.
type Store struct {
	client  redis.UniversalClient
	pipe    *pipeline
	prefix  string
	metrics *metrics
	log     *slog.Logger
	// cutoff is the NotBefore of the latest detected data loss (Unix seconds, 0 for
	// none): tokens issued before it are refused without asking Redis.
	cutoff atomic.Int64
	// genMu guards generation, the store generation this server holds.
	genMu      sync.Mutex
	generation Generation
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
	return &Store{
		client:  client,
		pipe:    newPipeline(client, storeTimeout, opts.ReplicaAcks, opts.Traced),
		prefix:  opts.Prefix,
		metrics: newMetrics(opts.Registerer),
		log:     opts.Logger,
	}
}

// Close stops the store's pipeline workers and waits for them. Calls during or after
// it fail with an error wrapping ErrUnavailable rather than wait; the client is the
// caller's to close.
func (s *Store) Close() { s.pipe.shutdown() }

// RevocationChannel is the pub/sub channel on which revoked ids are announced.
func (s *Store) RevocationChannel() string { return s.prefix + "revocations" }

// Check reports whether sub is revoked: its token, stamp or session entry exists, or
// it was issued at or before its user's cutoff. One MGET, one round trip. An error
// wraps ErrUnavailable.
func (s *Store) Check(ctx context.Context, sub Subject) (bool, error) {
	return s.CheckIDs(ctx, sub, IDsOf(sub))
}

// CheckIDs is Check for a caller that has IDsOf(sub) already (the verify path, which
// also indexes its cache by them): each id is a SHA-256 digest, made once per check.
func (s *Store) CheckIDs(ctx context.Context, sub Subject, ids IDs) (bool, error) {
	if s.beforeCutoff(sub.IssuedAt) {
		s.metrics.checkListed.Inc()
		return true, nil
	}
	k := s.keysOf(sub, ids)
	args := make([]any, 3, 5)
	args[0], args[1], args[2] = "mget", k.Token, k.Cutoff
	if k.Stamp != "" {
		args = append(args, k.Stamp, k.Session)
	}
	cmd := redis.NewSliceCmd(ctx, args...)
	if err := s.pipe.do(ctx, cmd, false); err != nil {
		s.metrics.checkError.Inc()
		return false, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	revoked := revokedBy(cmd.Val(), sub.IssuedAt)
	if revoked {
		s.metrics.checkListed.Inc()
	} else {
		s.metrics.checkClear.Inc()
	}
	return revoked, nil
}

// revokedBy decides Check from the MGET reply: token, cutoff, then stamp and session.
func revokedBy(vals []any, issuedAt time.Time) bool {
	for i, v := range vals {
		str, ok := v.(string)
		if !ok {
			continue
		}
		if i != 1 {
			return true
		}
		at, _, _ := strings.Cut(str, " ")
		cutoff, err := strconv.ParseInt(at, 10, 64)
		if err != nil || issuedAt.Unix() <= cutoff {
			return true
		}
	}
	return false
}

// Revoke revokes sub until the given time: its stamp when it has a session (every
// token of that login, access and refresh, every encoding), else the token alone; and
// publishes the revocation on RevocationChannel in the same script. It returns
// ErrAlreadyBlacklisted when sub was revoked before, an error wrapping ErrUnavailable
// when Redis did not answer, stored nothing or, with StoreOptions.ReplicaAcks, too
// few replicas acknowledged the write.
func (s *Store) Revoke(ctx context.Context, sub Subject, until time.Time) error {
	return s.RevokeIDs(ctx, sub, IDsOf(sub), until)
}

// RevokeIDs is Revoke for a caller that has IDsOf(sub) already.
func (s *Store) RevokeIDs(ctx context.Context, sub Subject, ids IDs, until time.Time) error {
	code, err := s.revoke(ctx, "add", sub, ids, until, time.Time{})
	if err == nil && code == 0 {
		return ErrAlreadyBlacklisted
	}
	return err
}

// RevokeSessionIDs revokes every token of sub's session (every stamp, access and
// refresh) until the given time and publishes the session's id, in the script a
// logout uses: ErrAlreadyBlacklisted when the session, or every token of the user
// issued up to sub, was revoked before. ids are IDsOf(sub); sub must have a session.
func (s *Store) RevokeSessionIDs(ctx context.Context, sub Subject, ids IDs, until time.Time) error {
	if !sub.HasSession() {
		return fmt.Errorf("revoking the session of a token without one")
	}
	if s.beforeCutoff(sub.IssuedAt) {
		return ErrAlreadyBlacklisted
	}
	k := s.keysOf(sub, ids)
	args := []any{newNonce(), until.UnixMilli(), sub.IssuedAt.Unix(), s.RevocationChannel(), ids.Session}
	code, published, _, err := s.script(ctx, revokeScript, []string{k.Session, k.Cutoff}, args)
	if err = s.outcome("add", code, published, err); err == nil && code == 0 {
		return ErrAlreadyBlacklisted
	}
	return err
}

// Rotate revokes the stamp of a refresh token being exchanged, until stampUntil. A
// stamp that was rotated before is reuse: the session is revoked until sessionUntil
// and ErrReuse returned. Otherwise as Revoke.
func (s *Store) Rotate(ctx context.Context, sub Subject, stampUntil, sessionUntil time.Time) error {
	if !sub.HasSession() {
		return fmt.Errorf("rotating a token without a session")
	}
	code, err := s.revoke(ctx, "rotate", sub, IDsOf(sub), stampUntil, sessionUntil)
	switch {
	case err != nil:
		return err
	case code == 0:
		return ErrAlreadyBlacklisted
	case code == 2:
		return ErrReuse
	}
	return nil
}

func (s *Store) revoke(ctx context.Context, op string, sub Subject, ids IDs, until, sessionUntil time.Time) (int64, error) {
	if s.beforeCutoff(sub.IssuedAt) {
		return 0, nil
	}
	k := s.keysOf(sub, ids)
	keys := []string{k.Token, k.Cutoff}
	msg := ids.Token
	if k.Stamp != "" {
		keys = []string{k.Stamp, k.Cutoff, k.Session, k.Token}
		msg = ids.Stamp
	}
	args := []any{newNonce(), until.UnixMilli(), sub.IssuedAt.Unix(), s.RevocationChannel(), msg}
	if !sessionUntil.IsZero() {
		args = append(args, sessionUntil.UnixMilli(), ids.Session)
	}
	code, published, _, err := s.script(ctx, revokeScript, keys, args)
	return code, s.outcome(op, code, published, err)
}

// CutOff revokes every token of sub's user issued at or before at (and sub itself),
// until the given time, and publishes it. When check is true, sub's own revocation is
// checked first: ErrAlreadyBlacklisted when it was revoked. It returns the user's
// cutoff after the call.
func (s *Store) CutOff(ctx context.Context, sub Subject, check bool, at, until time.Time) (time.Time, error) {
	if check && s.beforeCutoff(sub.IssuedAt) {
		return time.Unix(s.cutoff.Load()-1, 0), ErrAlreadyBlacklisted
	}
	ids := IDsOf(sub)
	k := s.keysOf(sub, ids)
	keys := []string{k.Cutoff}
	iat := ""
	if check {
		keys = append(keys, k.Token)
		if k.Stamp != "" {
			keys = append(keys, k.Stamp, k.Session)
		}
		iat = strconv.FormatInt(sub.IssuedAt.Unix(), 10)
	}
	args := []any{at.Unix(), newNonce(), until.UnixMilli(), iat, s.RevocationChannel(), ids.User}
	code, published, cutoff, err := s.script(ctx, cutoffScript, keys, args)
	if err = s.outcome("cutoff", code, published, err); err != nil {
		return time.Time{}, err
	}
	if code == 0 {
		return time.Unix(cutoff, 0), ErrAlreadyBlacklisted
	}
	return time.Unix(cutoff, 0), nil
}

// Cutoff reads the cutoff of a user: zero when none.
func (s *Store) Cutoff(ctx context.Context, userID string) (time.Time, error) {
	sub := Subject{UserID: userID}
	cmd := redis.NewStringCmd(ctx, "get", s.keysOf(sub, IDsOf(sub)).Cutoff)
	err := s.pipe.do(ctx, cmd, false)
	switch {
	case errors.Is(err, redis.Nil):
		return time.Time{}, nil
	case err != nil:
		return time.Time{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	at, _, _ := strings.Cut(cmd.Val(), " ")
	n, err := strconv.ParseInt(at, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: malformed cutoff %q", ErrUnavailable, cmd.Val())
	}
	return time.Unix(n, 0), nil
}

// script runs one of the store's scripts as a write and parses its {code, published
// [, value]} reply.
func (s *Store) script(ctx context.Context, src string, keys []string, args []any) (code int64, published bool, value int64, err error) {
	cmdArgs := make([]any, 0, 3+len(keys)+len(args))
	cmdArgs = append(cmdArgs, "eval", src, len(keys))
	for _, k := range keys {
		cmdArgs = append(cmdArgs, k)
	}
	cmdArgs = append(cmdArgs, args...)
	cmd := redis.NewSliceCmd(ctx, cmdArgs...)
	err = s.pipe.do(ctx, cmd, true)
	vals := cmd.Val()
	// A reply that wrote nothing (already revoked) needs no replica's acknowledgement;
	// any other failure is the caller's.
	wroteNothing := len(vals) > 0 && vals[0] == int64(0)
	if err != nil && (!errors.Is(err, ErrReplicasBehind) || !wroteNothing) {
		return 0, false, 0, err
	}
	ints := make([]int64, 3)
	for i := 0; i < len(vals) && i < 3; i++ {
		n, ok := vals[i].(int64)
		if !ok {
			return 0, false, 0, fmt.Errorf("unexpected script reply %v", vals)
		}
		ints[i] = n
	}
	return ints[0], ints[1] == 1, ints[2], nil
}

// outcome counts a write and turns its failure into the error callers see.
func (s *Store) outcome(op string, code int64, published bool, err error) error {
	switch {
	case errors.Is(err, ErrReplicasBehind):
		s.metrics.ops.WithLabelValues(op, "replicas_behind").Inc()
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	case err != nil:
		s.metrics.ops.WithLabelValues(op, "error").Inc()
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	case code < 0:
		s.metrics.ops.WithLabelValues(op, "not_stored").Inc()
		return fmt.Errorf("%w: %w", ErrUnavailable, ErrNotStored)
	case code == 0:
		s.metrics.ops.WithLabelValues(op, "exists").Inc()
		return nil
	}
	if !published {
		s.metrics.ops.WithLabelValues(op, "unpublished").Inc()
		s.log.Error("revocation stored but not announced: the Redis user may not PUBLISH on the revocation channel; other replicas' verify caches keep the token until it expires",
			"channel", s.RevocationChannel())
	}
	s.metrics.ops.WithLabelValues(op, "added").Inc()
	return nil
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

// metrics are the blacklist's Prometheus series.
type metrics struct {
	ops *prometheus.CounterVec
	// checkListed, checkClear and checkError are ops' series of Check, resolved once:
	// every uncached verification counts one.
	checkListed, checkClear, checkError prometheus.Counter
	revocations                         prometheus.Counter
	dataLost                            prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{ops: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "authserver_blacklist_operations_total",
		Help: "Blacklist operations by kind (add, rotate, cutoff, check) and result (added, exists, replicas_behind, not_stored, unpublished, listed, clear, error).",
	}, []string{"op", "result"}),
		revocations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "authserver_revocations_received_total",
			Help: "Revocations received from other replicas (and this one) over Redis pub/sub.",
		}),
		dataLost: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "authserver_blacklist_store_data_lost_total",
			Help: "Times this server found the blacklist store's generation marker gone or replaced (its entries lost); tokens issued before the detection are refused until they expire.",
		}),
	}
	for _, op := range []string{"add", "rotate", "cutoff"} {
		for _, r := range []string{"added", "exists", "replicas_behind", "not_stored", "unpublished", "error"} {
			m.ops.WithLabelValues(op, r)
		}
	}
	m.checkListed = m.ops.WithLabelValues("check", "listed")
	m.checkClear = m.ops.WithLabelValues("check", "clear")
	m.checkError = m.ops.WithLabelValues("check", "error")
	if reg != nil {
		reg.MustRegister(m.ops, m.revocations, m.dataLost)
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
