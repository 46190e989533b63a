package redisconf

import (
	"strconv"

	"k8s.io/apimachinery/pkg/api/resource"
)

// MaxMemoryPercent is the share of the container's memory limit that Redis may use for
// data. The rest is for what maxmemory does not count: the AOF rewrite's forked child
// (copy-on-write pages under a write storm), client and AOF buffers, fragmentation.
const MaxMemoryPercent = 60

// MaxMemory is the maxmemory for a container memory limit: MaxMemoryPercent of it, in
// bytes. Zero (no limit) leaves Redis without one.
func MaxMemory(limit *resource.Quantity) int64 {
	if limit == nil || limit.IsZero() {
		return 0
	}
	return limit.Value() / 100 * MaxMemoryPercent
}

// Render is the redis.conf of the managed Redis. Eviction is off: a blacklist entry that
// Redis dropped under memory pressure would make a logged-out token valid again. With a
// maxmemory, a full Redis refuses writes (logout answers 503) instead of growing until the
// kernel kills it, which would end in a crash loop, as replaying the AOF needs the same
// memory again.
func Render(password string, maxMemory int64) string {
	conf := "requirepass " + password + "\nmaxmemory-policy noeviction\n"
	if maxMemory > 0 {
		conf += "maxmemory " + strconv.FormatInt(maxMemory, 10) + "\n"
	}
	return conf
}
