package blacklist

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Generation is one life of the store's data, recorded in the marker key
// <prefix>store-generation: written when a server first finds the store without a
// marker, it is gone when the data is (FLUSHALL, a restart of a Redis that does not
// persist, a failover to an empty node), and an old one is back when an old snapshot
// is restored.
type Generation struct {
	// ID names the generation; it starts with its creation time in Unix milliseconds.
	ID string `json:"generation"`
	// NotBefore, when not zero, is the cutoff a detected loss set: every token issued
	// before it is refused (Unix seconds).
	NotBefore int64 `json:"notBefore,omitempty"`
	// Previous is the generation whose loss started this one, "" for the first.
	Previous string `json:"previous,omitempty"`
	// Shards are the hash tags of its copies on every master of a Redis Cluster
	// (shards.go); none elsewhere.
	Shards []string `json:"shards,omitempty"`
	// KeyLayout is the key layout of the servers that wrote the marker last;
	// servers of the previous releases wrote none (0).
	KeyLayout int `json:"keyLayout,omitempty"`
	// LegacyUntil, when not zero, is when entries of the first release's key layout
	// stop mattering (Unix milliseconds): until then every server reads them too.
	LegacyUntil int64 `json:"legacyUntil,omitempty"`
}

// KeyLayout is the key layout of this release: one record per session holding its
// current stamp (layout 2, the previous release's, kept an entry per rotated stamp;
// layout 1, the first release's, a key "<prefix>bl:<token id>" per logged-out token
// outside any user's hash tag).
const KeyLayout = 3

// LegacyLayoutWindow is how long after a server of this release first finds a store
// that its servers have not marked (a new store, or one the previous releases used)
// every check also reads the first release's entries: the longest an access token may
// live (spec.tokens.maxLifetime is at most 24h; the first release had no refresh
// tokens) plus the leeway cap and the skew margin. A logout stored by a server of the
// first release, before the upgrade or during its rollout, keeps its token refused.
const LegacyLayoutWindow = 24*time.Hour + 6*time.Minute

// started is when g was created, from its ID; zero when unknown.
func (g Generation) started() time.Time {
	ms, _, _ := strings.Cut(g.ID, "-")
	n, err := strconv.ParseInt(ms, 10, 64)
	if err != nil {
		return time.Time{}
	}
	return time.UnixMilli(n)
}

// newGeneration is a fresh generation created at now (nextGeneration marks its layout).
func newGeneration(now time.Time, notBefore int64, previous string) Generation {
	return Generation{ID: strconv.FormatInt(now.UnixMilli(), 10) + "-" + newNonce()[:8], NotBefore: notBefore, Previous: previous}
}

// cutoffAfter is the NotBefore of a loss detected at: every token issued at or before
// that second is refused, so none issued just before the detection slips through.
func cutoffAfter(at time.Time) int64 { return at.Unix() + 1 }

// generationStep is what a server does after reading the marker.
type generationStep struct {
	// Adopt is the generation the server holds from now on.
	Adopt Generation
	// Write, when set, is written as the marker (only if the marker is still what was read).
	Write bool
	// Lost reports that the data of the generation the server held is gone.
	Lost bool
}

// nextGeneration decides what a server that holds known (zero ID: none yet) does on
// reading marker (nil: no marker) at now (Redis' clock). A server with no generation
// adopts the marker, or writes the first one. A marker that is gone, or another
// generation than known, is a loss: the server adopts a newer generation that already
// records a loss (another server detected it first, and its cutoff is at least as
// late as the data loss); otherwise it starts a new generation whose cutoff is now.
// A generation that no server of this layout has marked yet is marked, and, unless it
// starts after a loss, the first release's entries are read for LegacyLayoutWindow.
func nextGeneration(known Generation, marker *Generation, now time.Time) generationStep {
	step := lossStep(known, marker, now)
	if step.Adopt.KeyLayout < KeyLayout {
		step.Adopt.KeyLayout = KeyLayout
		if !step.Lost {
			step.Adopt.LegacyUntil = now.Add(LegacyLayoutWindow).UnixMilli()
		}
		step.Write = true
	}
	return step
}

// lossStep is nextGeneration's decision about losses.
func lossStep(known Generation, marker *Generation, now time.Time) generationStep {
	switch {
	case marker == nil && known.ID == "":
		return generationStep{Adopt: newGeneration(now, 0, ""), Write: true}
	case marker == nil:
		return generationStep{Adopt: newGeneration(now, cutoffAfter(now), known.ID), Write: true, Lost: true}
	case known.ID == "" || marker.ID == known.ID:
		return generationStep{Adopt: *marker}
	case marker.NotBefore > 0 && !marker.started().Before(known.started()):
		return generationStep{Adopt: *marker, Lost: true}
	}
	return generationStep{Adopt: newGeneration(now, cutoffAfter(now), known.ID), Write: true, Lost: true}
}

// generationKey is the marker's key.
func (s *Store) generationKey() string { return s.prefix + "store-generation" }

// replaceIfScript sets KEYS[1] to ARGV[2] only while it holds ARGV[1] ("" for none),
// so that servers detecting the same loss at once agree on one new generation. It
// runs at maxmemory too: a detected loss is always recorded.
const replaceIfScript = `#!lua flags=allow-oom
local cur = redis.call('GET', KEYS[1])
if (cur or '') ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
return 1`

// GenerationEvent is what one check of the marker found.
type GenerationEvent struct {
	// Generation is the one the server holds after the check.
	Generation Generation
	// Lost is set when the check found the data of the previous generation gone.
	Lost bool
	// Previous is the generation whose loss the check found.
	Previous string
}

// Hold makes the store start from generation g, as recorded outside Redis (the
// issuer's ConfigMap), so that a loss while every server was down is still seen: a
// marker then missing or foreign is a loss. Its cutoff applies at once.
func (s *Store) Hold(g Generation) {
	s.genMu.Lock()
	defer s.genMu.Unlock()
	s.generation = g
	s.raiseCutoff(g.NotBefore)
}

// readMarkerScript reads the marker ("" for none) and the time by the clock of the
// Redis that holds it, so that a data-loss cutoff comes from the clock the scripts
// take iat from (on a Cluster, that of the marker's shard).
const readMarkerScript = `#!lua flags=no-writes
local t = redis.call('TIME')
return {redis.call('GET', KEYS[1]) or '', tonumber(t[1]), tonumber(t[2])}`

// CheckGeneration reads the marker and acts on it (nextGeneration): it writes the
// first or a new generation, and raises the in-memory cutoff that Check applies. An
// error wraps ErrUnavailable.
func (s *Store) CheckGeneration(ctx context.Context) (GenerationEvent, error) {
	s.genMu.Lock()
	defer s.genMu.Unlock()
	vals, err := s.client.Eval(ctx, readMarkerScript, []string{s.generationKey()}).Slice()
	if err != nil {
		return GenerationEvent{}, fmt.Errorf("%w: reading the store generation: %w", ErrUnavailable, err)
	}
	raw, now, err := markerReply(vals)
	if err != nil {
		return GenerationEvent{}, fmt.Errorf("%w: reading the store generation: %w", ErrUnavailable, err)
	}
	var marker *Generation
	if raw != "" {
		var g Generation
		if json.Unmarshal([]byte(raw), &g) != nil || g.ID == "" {
			// A marker that does not parse names no generation this server knows.
			g = Generation{ID: "unreadable"}
		}
		marker = &g
	}
	var shards shardState
	if marker != nil {
		if shards, err = s.checkShards(ctx, *marker); err != nil {
			return GenerationEvent{}, err
		}
	}
	var step generationStep
	if shards.lost {
		// A shard of a Cluster lost its data: the generation is gone as if the marker
		// were, also for a server that has held none yet.
		known := s.generation
		if known.ID == "" {
			known = *marker
		}
		step = nextGeneration(known, nil, now)
	} else {
		step = nextGeneration(s.generation, marker, now)
	}
	if !step.Write && len(shards.missing) > 0 && marker != nil && step.Adopt.ID == marker.ID {
		// A master no copy reaches yet (added since, or a marker of an older server).
		step.Write = true
	}
	if step.Write {
		listed := step.Adopt.Shards
		if step.Adopt, err = s.withShards(ctx, step.Adopt); err != nil {
			return GenerationEvent{}, err
		}
		if err := s.writeShardCopies(ctx, step.Adopt, step.Adopt.Shards[len(listed):]); err != nil {
			return GenerationEvent{}, err
		}
		value, _ := json.Marshal(step.Adopt)
		ok, err := s.client.Eval(ctx, replaceIfScript, []string{s.generationKey()}, raw, string(value)).Int()
		if err != nil {
			return GenerationEvent{}, fmt.Errorf("%w: writing the store generation: %w", ErrUnavailable, err)
		}
		if ok == 0 {
			// Another server wrote first: the next check adopts its generation.
			return GenerationEvent{Generation: s.generation}, nil
		}
		raw = string(value)
	}
	previous := s.generation.ID
	s.generation, s.generationRaw = step.Adopt, raw
	s.raiseCutoff(step.Adopt.NotBefore)
	s.legacyUntil.Store(step.Adopt.LegacyUntil)
	if step.Lost {
		s.metrics.dataLost.Inc()
		s.log.Error("blacklist store data lost: every token issued before the cutoff is refused until it expires; new logins work",
			"lost_generation", previous, "generation", step.Adopt.ID, "not_before", time.Unix(step.Adopt.NotBefore, 0).UTC().Format(time.RFC3339))
	}
	return GenerationEvent{Generation: step.Adopt, Lost: step.Lost, Previous: previous}, nil
}

// markerReply reads readMarkerScript's reply.
func markerReply(vals []any) (string, time.Time, error) {
	if len(vals) == 3 {
		raw, ok1 := vals[0].(string)
		sec, ok2 := vals[1].(int64)
		usec, ok3 := vals[2].(int64)
		if ok1 && ok2 && ok3 {
			return raw, time.Unix(sec, usec*1000), nil
		}
	}
	return "", time.Time{}, fmt.Errorf("unexpected reply %v", vals)
}

// followGeneration checks the marker again when it is not the one this server holds
// (another server found a loss, or none was read yet): issuance must know the
// store's data-loss cutoff before it signs. One GET when nothing changed.
func (s *Store) followGeneration(ctx context.Context) error {
	cmd := redis.NewStringCmd(ctx, "get", s.generationKey())
	err := s.pipe.do(ctx, cmd, false)
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("%w: reading the store generation: %w", ErrUnavailable, err)
	}
	s.genMu.Lock()
	held := s.generationRaw
	s.genMu.Unlock()
	if held != "" && cmd.Val() == held {
		return nil
	}
	_, err = s.CheckGeneration(ctx)
	return err
}

// raiseCutoff moves the in-memory cutoff to notBefore when that is later.
func (s *Store) raiseCutoff(notBefore int64) {
	for {
		cur := s.cutoff.Load()
		if notBefore <= cur || s.cutoff.CompareAndSwap(cur, notBefore) {
			return
		}
	}
}

// beforeCutoff reports whether a token issued at iat is refused by a detected loss;
// an atomic load, no round trip.
func (s *Store) beforeCutoff(iat time.Time) bool {
	c := s.cutoff.Load()
	return c > 0 && iat.Unix() < c
}

// GenerationOptions tune WatchGeneration.
type GenerationOptions struct {
	// Interval between checks of the marker; default 1s (the health interval).
	Interval time.Duration
	// OnChange, when set, is called after every check that found a loss or another
	// generation than the last one, with what it found: the verifier empties its
	// cache, the issuer records it in its ConfigMap.
	OnChange func(GenerationEvent)
	Logger   *slog.Logger
}

// WatchGeneration checks the marker at once and then every interval until ctx ends.
func (s *Store) WatchGeneration(ctx context.Context, opts GenerationOptions) {
	if opts.Interval <= 0 {
		opts.Interval = time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	last := ""
	tick := time.NewTicker(opts.Interval)
	defer tick.Stop()
	for {
		checkCtx, cancel := context.WithTimeout(ctx, storeTimeout)
		ev, err := s.CheckGeneration(checkCtx)
		cancel()
		switch {
		case err != nil && ctx.Err() == nil:
			opts.Logger.Debug("store generation not checked", "err", err)
		case err == nil && (ev.Lost || ev.Generation.ID != last):
			last = ev.Generation.ID
			if opts.OnChange != nil {
				opts.OnChange(ev)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
