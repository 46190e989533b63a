package blacklist

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// MemoryUse is what Redis reports of its memory and keys.
type MemoryUse struct {
	// Used and Max are used_memory and maxmemory (0: no limit) in bytes, of the
	// primary closest to its limit (a Cluster's shards fill unevenly).
	Used, Max int64
	// Keys counts the keys of the database the servers use, on every primary.
	Keys int64
}

// fuller reports whether u is closer to its limit than o.
func (u MemoryUse) fuller(o MemoryUse) bool {
	switch {
	case u.Max > 0 && o.Max > 0:
		return float64(u.Used)/float64(u.Max) > float64(o.Used)/float64(o.Max)
	case u.Max > 0 || o.Max > 0:
		return u.Max > 0
	}
	return u.Used > o.Used
}

// parseMemoryInfo reads used_memory and maxmemory from the reply of INFO memory.
func parseMemoryInfo(info string) (MemoryUse, error) {
	var u MemoryUse
	var seen int
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		switch {
		case k != "used_memory" && k != "maxmemory":
			continue
		case err != nil:
			return MemoryUse{}, fmt.Errorf("INFO memory: %s is %q", k, v)
		case k == "used_memory":
			u.Used = n
		default:
			u.Max = n
		}
		seen++
	}
	if seen != 2 {
		return MemoryUse{}, errors.New("INFO memory lacks used_memory or maxmemory")
	}
	return u, nil
}

// ReadMemory asks every primary for its memory (INFO memory) and key count (DBSIZE).
// An error wraps ErrUnavailable when Redis cannot be reached; a refusal (an ACL user
// without INFO, a managed service that hides it) is Redis' reply.
func (s *Store) ReadMemory(ctx context.Context) (MemoryUse, error) {
	var mu sync.Mutex
	var total MemoryUse
	read := func(ctx context.Context, c *redis.Client) error {
		info, err := c.Info(ctx, "memory").Result()
		if err != nil {
			return err
		}
		u, err := parseMemoryInfo(info)
		if err != nil {
			return err
		}
		if u.Keys, err = c.DBSize(ctx).Result(); err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		keys := total.Keys + u.Keys
		if u.fuller(total) || total == (MemoryUse{}) {
			total = u
		}
		total.Keys = keys
		return nil
	}
	var err error
	switch c := s.client.(type) {
	case *redis.ClusterClient:
		err = c.ForEachMaster(ctx, read)
	case *redis.Client:
		err = read(ctx, c)
	default:
		err = fmt.Errorf("no memory reading for a %T", s.client)
	}
	var reply redis.Error
	switch {
	case errors.As(err, &reply):
		return MemoryUse{}, fmt.Errorf("reading Redis memory: %w", err)
	case err != nil:
		return MemoryUse{}, fmt.Errorf("%w: reading Redis memory: %w", ErrUnavailable, err)
	}
	return total, nil
}

// MemoryOptions tune WatchMemory.
type MemoryOptions struct {
	// Interval between readings; default 15s.
	Interval time.Duration
	Logger   *slog.Logger
}

// WatchMemory reads Redis' memory and key count into the store's gauges
// (authserver_redis_*) at once and then every interval until ctx ends. A Redis that
// refuses INFO or DBSIZE is logged once and no longer asked; the gauges then stay at
// zero.
func (s *Store) WatchMemory(ctx context.Context, opts MemoryOptions) {
	if opts.Interval <= 0 {
		opts.Interval = 15 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	g := s.metrics.memory
	tick := time.NewTicker(opts.Interval)
	defer tick.Stop()
	for {
		readCtx, cancel := context.WithTimeout(ctx, storeTimeout)
		u, err := s.ReadMemory(readCtx)
		cancel()
		switch {
		case err == nil:
			g.used.Set(float64(u.Used))
			g.max.Set(float64(u.Max))
			g.keys.Set(float64(u.Keys))
		case !errors.Is(err, ErrUnavailable):
			opts.Logger.Warn("cannot read Redis memory use; authserver_redis_* metrics stay at 0 and the memory alert cannot fire", "err", err)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
