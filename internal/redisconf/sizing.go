package redisconf

import (
	"k8s.io/apimachinery/pkg/api/resource"
)

// The session store's memory, measured on a real redis-server
// (authserver/blacklist TestSessionMemory_WithinTheSizingFormula checks these bounds).
const (
	// BytesPerSession is the most one session costs Redis, with a key prefix of up to
	// 80 characters: its record, the entry of its logout and, for a user with one
	// session, the user's cutoff and single-session marker, about 1 270 bytes together
	// with the hash tables' growth; a fifth more is left for allocator fragmentation.
	BytesPerSession = 1536
	// KeysPerSession is the most keys one session holds: those same four (its record, its
	// logout's entry, the user's cutoff and single-session marker).
	KeysPerSession = 4
	// BaseMemory is what Redis uses before any session: its own structures, the
	// replication backlog (1 MiB) and client buffers, with room to spare.
	BaseMemory = 16 << 20
)

// MemoryFor is the container memory that holds sessions: maxmemory, MaxMemoryPercent
// of it, fits BaseMemory plus BytesPerSession per session; rounded up to a whole MiB.
//
//	limit = ceil((BaseMemory + sessions × BytesPerSession) × 100 / MaxMemoryPercent, 1 MiB)
func MemoryFor(sessions int64) resource.Quantity {
	const mib = 1 << 20
	data := BaseMemory + max(sessions, 0)*BytesPerSession
	limit := (data*100/MaxMemoryPercent + mib - 1) / mib * mib
	return *resource.NewQuantity(limit, resource.BinarySI)
}
