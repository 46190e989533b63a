package blacklist

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"

	"github.com/redis/go-redis/v9"
)

// On a Redis Cluster each master holds its own share of the data and can lose it alone
// (its own FLUSHALL, a restart without persistence, a failover to an empty replica), so
// one marker on one shard would miss a loss on another. The generation is therefore
// also recorded on every shard: a copy under <prefix>store-generation:{<tag>}:<id>, one
// tag per master, the tags listed in the marker (Generation.Shards). A listed copy that is
// gone is a loss of the whole generation. The ID in the key keeps servers that start
// generations at once from writing each other's copies. The
// copies follow their slots when the Cluster is resharded (so the list stays valid), and a
// master that no listed copy reaches (one added later) gets one of its own.

// maxShardTags bounds the hash tags tried to reach every master; 4096 reach a master
// that owns a single slot range of 64 slots with a probability above 1 - 10^-6.
const maxShardTags = 4096

// shardTagSlots caches the slot of each hash tag tried ("0", "1", …): it never changes.
var shardTagSlots = struct {
	sync.Mutex
	slots []int64
}{}

// shardCopyKey is the key of generation id's copy under tag.
func (s *Store) shardCopyKey(tag, id string) string {
	return s.prefix + "store-generation:{" + tag + "}:" + id
}

// shardState is what checkShards found.
type shardState struct {
	// lost says a listed copy is gone.
	lost bool
	// missing are tags of masters no listed copy reaches, to add to the list.
	missing []string
}

// checkShards reads the copies marker lists and finds the masters none of them reaches;
// a zero state on anything but a Redis Cluster.
func (s *Store) checkShards(ctx context.Context, marker Generation) (shardState, error) {
	cluster, ok := s.client.(*redis.ClusterClient)
	if !ok {
		return shardState{}, nil
	}
	var st shardState
	for _, tag := range marker.Shards {
		n, err := cluster.Exists(ctx, s.shardCopyKey(tag, marker.ID)).Result()
		if err != nil {
			return shardState{}, fmt.Errorf("%w: reading the store generation's copy on a shard: %w", ErrUnavailable, err)
		}
		if n == 0 {
			st.lost = true
		}
	}
	need, err := tagsForEveryMaster(ctx, cluster, marker.Shards)
	if err != nil {
		return shardState{}, err
	}
	st.missing = need
	return st, nil
}

// writeShardCopies writes g's copies under each tag.
func (s *Store) writeShardCopies(ctx context.Context, g Generation, tags []string) error {
	cluster, ok := s.client.(*redis.ClusterClient)
	if !ok {
		return nil
	}
	for _, tag := range tags {
		if err := cluster.Set(ctx, s.shardCopyKey(tag, g.ID), "1", 0).Err(); err != nil {
			return fmt.Errorf("%w: writing the store generation's copy on a shard: %w", ErrUnavailable, err)
		}
	}
	return nil
}

// withShards is g with copies on every master of a Cluster: its listed tags and, for
// each master none of them reaches, a new one. Anything but a Cluster has none.
func (s *Store) withShards(ctx context.Context, g Generation) (Generation, error) {
	cluster, ok := s.client.(*redis.ClusterClient)
	if !ok {
		return g, nil
	}
	need, err := tagsForEveryMaster(ctx, cluster, g.Shards)
	if err != nil {
		return g, err
	}
	g.Shards = append(slices.Clone(g.Shards), need...)
	return g, nil
}

// tagsForEveryMaster returns one new tag for each shard (a master and its replicas) that
// owns slots but no slot of have's tags (CLUSTER SHARDS, Redis 7.0 and later).
func tagsForEveryMaster(ctx context.Context, cluster *redis.ClusterClient, have []string) ([]string, error) {
	shards, err := cluster.ClusterShards(ctx).Result()
	if err != nil {
		return nil, fmt.Errorf("%w: reading the Cluster's shards: %w", ErrUnavailable, err)
	}
	// A shard is its slots, whichever of its nodes is the master now.
	shardOf := func(slot int64) int {
		for i, sh := range shards {
			for _, r := range sh.Slots {
				if r.Start <= slot && slot <= r.End {
					return i
				}
			}
		}
		return -1
	}
	uncovered := map[int]bool{}
	for i, sh := range shards {
		if len(sh.Slots) > 0 {
			uncovered[i] = true
		}
	}
	for _, tag := range have {
		n, err := strconv.Atoi(tag)
		if err != nil {
			continue
		}
		slot, err := tagSlot(ctx, cluster, n)
		if err != nil {
			return nil, err
		}
		delete(uncovered, shardOf(slot))
	}
	var out []string
	for n := 0; len(uncovered) > 0 && n < maxShardTags; n++ {
		slot, err := tagSlot(ctx, cluster, n)
		if err != nil {
			return nil, err
		}
		if m := shardOf(slot); uncovered[m] {
			delete(uncovered, m)
			out = append(out, strconv.Itoa(n))
		}
	}
	return out, nil
}

// tagSlot is the slot of hash tag n, asked of the Cluster once (CLUSTER KEYSLOT) and
// cached: the server's own hash, not a copy of it.
func tagSlot(ctx context.Context, cluster *redis.ClusterClient, n int) (int64, error) {
	shardTagSlots.Lock()
	defer shardTagSlots.Unlock()
	for len(shardTagSlots.slots) <= n {
		// A batch at a time: one round trip for the first 256 tags.
		from := len(shardTagSlots.slots)
		pipe := cluster.Pipeline()
		cmds := make([]*redis.IntCmd, 0, 256)
		for i := from; i < from+256; i++ {
			cmds = append(cmds, pipe.ClusterKeySlot(ctx, "{"+strconv.Itoa(i)+"}"))
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return 0, fmt.Errorf("%w: asking the Cluster for key slots: %w", ErrUnavailable, err)
		}
		for _, c := range cmds {
			shardTagSlots.slots = append(shardTagSlots.slots, c.Val())
		}
	}
	return shardTagSlots.slots[n], nil
}
