package verifycache

import (
	"crypto/sha256"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/hiringo/auth-operator/authserver/keyset"
	"github.com/hiringo/auth-operator/authserver/token"
)

// DefaultSize is the number of entries a cache holds unless configured otherwise.
const DefaultSize = 100000

// raceWindow bounds how long a verification may take between the blacklist check and
// its insertion into the cache. Revocations are remembered this long, so that one
// that arrives during the check keeps the token out; a slower insertion is dropped.
const raceWindow = 2 * time.Second

// Principal is what a cached verification says about its token: what forward auth
// answers, and the RFC 7662 introspection fields.
type Principal struct {
	UserID    string
	Email     string
	SessionID string
	ExpiresAt time.Time
	// IssuedAt is the token's iat; zero without one.
	IssuedAt time.Time
	// ClientID, Issuer, Audience and TokenID are client_id, iss, aud and jti, each
	// empty when the token has none (a seed-format token has none of them).
	ClientID string
	Issuer   string
	Audience []string
	TokenID  string
}

// PrincipalOf extracts the cached fields of a verified token.
func PrincipalOf(v token.Verified) Principal {
	u := v.Claims.User
	c := &v.Claims
	return Principal{
		UserID: u.ID, Email: u.Email, SessionID: u.Auth.ID, ExpiresAt: v.ExpiresAt, IssuedAt: v.IssuedAt,
		ClientID: c.ClientID, Issuer: c.Issuer, Audience: c.Audience, TokenID: c.ID,
	}
}

// entry is one verified token: the exact string that was verified (by digest), the
// revocation ids that cover it, the key that verified it and what it says.
type entry struct {
	ids       []string
	keyID     string
	set       *keyset.Set
	principal Principal
}

// Cache is a bounded, least-recently-used map from the exact token string to its
// verification. Entries are indexed by every revocation id that covers them (the
// token's blacklist id, its stamp, its session, its user), so revoking any of them
// removes every cached encoding of every token it covers. Lookups miss while the cache is not
// trusted: before the first revocation subscription is confirmed and whenever it is
// lost (see Follow).
type Cache struct {
	keys    token.KeySource
	now     func() time.Time
	metrics *metrics

	trusted atomic.Bool

	mu  sync.Mutex
	lru *simplelru.LRU[[sha256.Size]byte, *entry]
	// byID lists the cached token digests of each revocation id.
	byID map[string][][sha256.Size]byte
	// recent holds ids revoked within raceWindow; recentOrder[recentHead:] lists
	// them oldest first.
	recent      map[string]time.Time
	recentOrder []revocation
	recentHead  int
	// generation changes at every purge; an insertion that started before it is dropped.
	generation uint64
}

type revocation struct {
	id string
	at time.Time
}

// Options tune a Cache.
type Options struct {
	// Size is the most entries held; DefaultSize when 0.
	Size int
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Registerer receives the cache's metrics; may be nil.
	Registerer prometheus.Registerer
}

// New makes an empty, untrusted cache over the keys of keys.
func New(keys token.KeySource, opts Options) (*Cache, error) {
	if opts.Size == 0 {
		opts.Size = DefaultSize
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	c := &Cache{
		keys:    keys,
		now:     opts.Now,
		metrics: newMetrics(opts.Registerer),
		byID:    make(map[string][][sha256.Size]byte),
		recent:  make(map[string]time.Time),
	}
	lru, err := simplelru.NewLRU(opts.Size, c.evicted)
	if err != nil {
		return nil, fmt.Errorf("verify cache of size %d: %w", opts.Size, err)
	}
	c.lru = lru
	c.metrics.trusted.Set(0)
	return c, nil
}

// evicted keeps the id index in step with the LRU; it runs under c.mu.
func (c *Cache) evicted(sum [sha256.Size]byte, e *entry) {
	for _, id := range e.ids {
		sums := c.byID[id]
		for i, s := range sums {
			if s == sum {
				sums = append(sums[:i], sums[i+1:]...)
				break
			}
		}
		if len(sums) == 0 {
			delete(c.byID, id)
		} else {
			c.byID[id] = sums
		}
	}
}

// Lookup returns the principal of raw when the exact same token was verified, is
// not expired, its key is still published and the cache is trusted.
func (c *Cache) Lookup(raw string) (Principal, bool) {
	if !c.trusted.Load() {
		c.metrics.lookups.untrusted.Inc()
		return Principal{}, false
	}
	sum := digestOf(raw)
	now := c.now()
	set := c.keys.Current()
	c.mu.Lock()
	e, ok := c.lru.Get(sum)
	if ok && !c.stillValid(e, set, now) {
		c.lru.Remove(sum)
		ok = false
	}
	c.mu.Unlock()
	if !ok {
		c.metrics.lookups.miss.Inc()
		return Principal{}, false
	}
	c.metrics.lookups.hit.Inc()
	return e.principal, true
}

// digestOf is the cache key of a token: the SHA-256 of its exact string. Tokens up to
// digestBuffer bytes (every token this service issues) are copied to the stack first:
// converting the string to a slice would allocate on every lookup.
func digestOf(raw string) [sha256.Size]byte {
	if len(raw) > digestBuffer {
		return sha256.Sum256([]byte(raw))
	}
	var buf [digestBuffer]byte
	return sha256.Sum256(append(buf[:0], raw...))
}

// digestBuffer is the longest token digestOf hashes without allocating.
const digestBuffer = 2048

// stillValid reports whether an entry may still answer: the token has not reached
// its exp, and the key that verified it is still published. A token without a kid
// was matched against the whole set, so it holds only while that exact set does.
func (c *Cache) stillValid(e *entry, set *keyset.Set, now time.Time) bool {
	if !now.Before(e.principal.ExpiresAt) || set == nil {
		return false
	}
	if e.set == set {
		return true
	}
	if e.keyID == "" {
		return false
	}
	_, published := set.Lookup(e.keyID)
	return published
}

// Ticket records the cache state before a blacklist check; Add uses it to drop a
// verification that a concurrent revocation or resynchronisation overtook.
type Ticket struct {
	generation uint64
	started    time.Time
	trusted    bool
}

// Begin is called before the blacklist check of a token that may be added.
func (c *Cache) Begin() Ticket {
	trusted := c.trusted.Load()
	c.mu.Lock()
	defer c.mu.Unlock()
	return Ticket{generation: c.generation, started: c.now(), trusted: trusted}
}

// Add caches a token that verified and was not revoked when checked after t; ids are
// the revocation ids that cover it (its blacklist id first). It does nothing when the
// cache was not trusted at t, was purged since, one of ids was revoked within the
// last raceWindow, or the check took longer than raceWindow: a revocation that
// reached this replica during the check is then still remembered, and one that
// arrives after the insertion removes the entry.
func (c *Cache) Add(t Ticket, raw string, v token.Verified, ids []string) {
	now := c.now()
	if !t.trusted || now.Sub(t.started) > raceWindow || !now.Before(v.ExpiresAt) {
		return
	}
	e := &entry{ids: ids, keyID: v.KeyID, set: v.KeySet, principal: PrincipalOf(v)}
	sum := digestOf(raw)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.generation != t.generation || !c.trusted.Load() {
		return
	}
	for _, id := range ids {
		if _, revoked := c.recent[id]; revoked {
			return
		}
	}
	if _, ok := c.lru.Peek(sum); ok {
		return
	}
	c.lru.Add(sum, e)
	for _, id := range ids {
		c.byID[id] = append(c.byID[id], sum)
	}
	c.metrics.entries.Set(float64(c.lru.Len()))
}

// Revoke drops every cached token that revocation id covers, and keeps them from
// being added for raceWindow.
func (c *Cache) Revoke(id string) {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, sum := range append([][sha256.Size]byte(nil), c.byID[id]...) {
		c.lru.Remove(sum)
	}
	c.pruneRecent(now)
	c.recent[id] = now
	c.recentOrder = append(c.recentOrder, revocation{id: id, at: now})
	c.metrics.entries.Set(float64(c.lru.Len()))
}

// pruneRecent forgets revocations older than raceWindow; it runs under c.mu.
func (c *Cache) pruneRecent(now time.Time) {
	for c.recentHead < len(c.recentOrder) && now.Sub(c.recentOrder[c.recentHead].at) > raceWindow {
		r := c.recentOrder[c.recentHead]
		if c.recent[r.id].Equal(r.at) {
			delete(c.recent, r.id)
		}
		c.recentOrder[c.recentHead] = revocation{}
		c.recentHead++
	}
	// Compact once the pruned head is the larger part, so each entry moves O(1) times.
	if c.recentHead > len(c.recentOrder)/2 {
		n := copy(c.recentOrder, c.recentOrder[c.recentHead:])
		c.recentOrder = c.recentOrder[:n]
		c.recentHead = 0
	}
}

// Distrust makes every lookup miss until Resync: revocations may be missed.
func (c *Cache) Distrust() {
	if c.trusted.Swap(false) {
		c.metrics.trusted.Set(0)
	}
}

// Purge empties the cache and leaves its trust as it is: every held token is checked
// again, against what the store (and its cutoff) says now. An insertion that started
// before it is dropped.
func (c *Cache) Purge() {
	c.mu.Lock()
	c.lru.Purge()
	c.generation++
	c.metrics.entries.Set(0)
	c.mu.Unlock()
}

// Resync forgets every entry (any of them may have been revoked while revocations
// could not be heard) and trusts the cache again.
func (c *Cache) Resync() {
	c.mu.Lock()
	c.lru.Purge()
	c.generation++
	c.trusted.Store(true)
	c.metrics.entries.Set(0)
	c.mu.Unlock()
	c.metrics.trusted.Set(1)
	c.metrics.resyncs.Inc()
}

// Trusted reports whether lookups may hit.
func (c *Cache) Trusted() bool { return c.trusted.Load() }

// Len is the number of cached tokens.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}
