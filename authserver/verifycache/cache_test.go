package verifycache_test

import (
	"sync"
	"testing"
	"time"

	"github.com/hiringo/auth-operator/authserver/keydomain"
	"github.com/hiringo/auth-operator/authserver/keyset"
	"github.com/hiringo/auth-operator/authserver/token"
	"github.com/hiringo/auth-operator/authserver/verifycache"
	"github.com/hiringo/auth-operator/internal/testutil/tokentest"
)

// clock is a settable time source.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// swappableKeys is a key source whose set a test replaces.
type swappableKeys struct {
	mu  sync.Mutex
	set *keyset.Set
}

func (k *swappableKeys) Current() *keyset.Set {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.set
}

func (k *swappableKeys) swap(t *testing.T, s keydomain.Set) {
	ks, err := keyset.NewSet(s)
	if err != nil {
		t.Fatal(err)
	}
	k.mu.Lock()
	k.set = ks
	k.mu.Unlock()
}

type fixture struct {
	t      *testing.T
	set    keydomain.Set
	keys   *swappableKeys
	clock  *clock
	cache  *verifycache.Cache
	verify *token.Verifier
}

func newFixture(t *testing.T, size int) *fixture {
	f := &fixture{t: t, set: tokentest.NewSet(t), keys: &swappableKeys{}, clock: &clock{now: time.Now()}}
	f.keys.swap(t, f.set)
	var err error
	f.cache, err = verifycache.New(f.keys, verifycache.Options{Size: size, Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	f.verify = token.NewVerifier(f.keys, token.VerifierOptions{Leeway: 30 * time.Second})
	f.cache.Resync()
	return f
}

// add verifies raw and caches it as the verify handler does.
func (f *fixture) add(raw string) token.Verified {
	f.t.Helper()
	v, err := f.verify.Verify(raw)
	if err != nil {
		f.t.Fatal(err)
	}
	f.cache.Add(f.cache.Begin(), raw, v, []string{v.BlacklistID})
	return v
}

func (f *fixture) hit(raw string) bool {
	_, ok := f.cache.Lookup(raw)
	return ok
}

func TestCache_HitsOnlyTheExactVerifiedToken(t *testing.T) {
	f := newFixture(t, 10)
	tok := tokentest.Issue(t, f.set, time.Minute)
	if f.hit(tok) {
		t.Fatal("hit before add")
	}
	f.add(tok)
	p, ok := f.cache.Lookup(tok)
	if !ok || p.UserID != tokentest.SeedUser.ID || p.Email != tokentest.SeedUser.Email || p.SessionID != tokentest.SeedUser.Auth.ID {
		t.Fatalf("lookup = %+v, %v", p, ok)
	}
	if f.hit(tokentest.HighS(t, tok)) || f.hit(tokentest.SlackBits(t, tok)) {
		t.Error("a re-encoded copy hit without its own verification")
	}
	if f.hit(tok[:len(tok)-2] + "AA") {
		t.Error("a token with another signature hit")
	}
}

func TestCache_RevokeDropsEveryEncoding(t *testing.T) {
	f := newFixture(t, 10)
	tok := tokentest.Issue(t, f.set, time.Minute)
	v := f.add(tok)
	copy := tokentest.HighS(t, tok)
	f.add(copy)
	if !f.hit(tok) || !f.hit(copy) {
		t.Fatal("both encodings should be cached")
	}
	f.cache.Revoke(v.BlacklistID)
	if f.hit(tok) || f.hit(copy) {
		t.Error("an encoding survived the revocation")
	}
	f.add(tok)
	if f.hit(tok) {
		t.Error("a just-revoked token was cached again")
	}
}

func TestCache_EntryNeverOutlivesExp(t *testing.T) {
	f := newFixture(t, 10)
	tok := tokentest.Issue(t, f.set, time.Minute)
	f.add(tok)
	f.clock.Add(59 * time.Second)
	if !f.hit(tok) {
		t.Fatal("miss before exp")
	}
	f.clock.Add(2 * time.Second)
	if f.hit(tok) {
		t.Error("hit after exp (the verifier's leeway must not extend the cache)")
	}
	if f.cache.Len() != 0 {
		t.Errorf("expired entry still held: Len = %d", f.cache.Len())
	}
}

func TestCache_DropsEntriesOfRemovedKeys(t *testing.T) {
	f := newFixture(t, 10)
	withKid := tokentest.Issue(t, f.set, time.Minute)
	noKid := tokentest.IssueSeedShaped(t, f.set, 2*time.Minute)
	f.add(withKid)
	f.add(noKid)

	rotated := tokentest.Rotate(t, f.set)
	f.keys.swap(t, rotated)
	if !f.hit(withKid) {
		t.Error("token of a still-published (now retired) key missed")
	}
	if f.hit(noKid) {
		t.Error("kid-less token hit after the key set changed; it must be re-verified")
	}

	var revoked keydomain.Set
	for _, k := range rotated.Keys {
		if k.State != keydomain.StateRetired {
			revoked.Keys = append(revoked.Keys, k)
		}
	}
	f.keys.swap(t, revoked)
	if f.hit(withKid) {
		t.Error("token of a revoked key hit")
	}
}

func TestCache_KidlessTokenIsBoundToTheSetThatVerifiedIt(t *testing.T) {
	f := newFixture(t, 10)
	noKid := tokentest.IssueSeedShaped(t, f.set, time.Minute)
	v, err := f.verify.Verify(noKid)
	if err != nil {
		t.Fatal(err)
	}
	ticket := f.cache.Begin()
	// The key that signed it is revoked between the verification and the insertion.
	var revoked keydomain.Set
	for _, k := range tokentest.Rotate(t, f.set).Keys {
		if k.State != keydomain.StateRetired {
			revoked.Keys = append(revoked.Keys, k)
		}
	}
	f.keys.swap(t, revoked)
	f.cache.Add(ticket, noKid, v, []string{v.BlacklistID})
	if f.hit(noKid) {
		t.Error("a token verified against the old set answers under the new one")
	}
}

func TestCache_FullCacheEvictsTheLeastRecentlyUsed(t *testing.T) {
	f := newFixture(t, 3)
	toks := make([]string, 5)
	ids := make([]string, 5)
	for i := range toks {
		toks[i] = tokentest.Issue(t, f.set, time.Duration(i+1)*time.Minute)
		ids[i] = f.add(toks[i]).BlacklistID
		if i == 2 {
			f.hit(toks[0])
		}
	}
	if f.cache.Len() != 3 {
		t.Fatalf("Len = %d, want 3", f.cache.Len())
	}
	want := map[int]bool{0: true, 1: false, 2: false, 3: true, 4: true}
	for i, tok := range toks {
		if got := f.hit(tok); got != want[i] {
			t.Errorf("token %d cached = %v, want %v", i, got, want[i])
		}
	}
	for _, id := range ids {
		f.cache.Revoke(id)
	}
	if f.cache.Len() != 0 {
		t.Errorf("Len after revoking all = %d", f.cache.Len())
	}
}

func TestCache_UntrustedMissesAndResyncEmpties(t *testing.T) {
	f := newFixture(t, 10)
	tok := tokentest.Issue(t, f.set, time.Minute)
	f.add(tok)
	f.cache.Distrust()
	if f.hit(tok) {
		t.Error("hit while distrusted")
	}
	f.add(tok)
	f.cache.Resync()
	if f.hit(tok) || f.cache.Len() != 0 {
		t.Errorf("entries survived a resync: Len = %d", f.cache.Len())
	}
}

func TestCache_AddOvertakenByRevocationOrResyncIsDropped(t *testing.T) {
	f := newFixture(t, 10)
	tok := tokentest.Issue(t, f.set, time.Minute)
	v, err := f.verify.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}

	ticket := f.cache.Begin()
	f.cache.Revoke(v.BlacklistID) // arrives while the blacklist is being read
	f.cache.Add(ticket, tok, v, []string{v.BlacklistID})
	if f.hit(tok) {
		t.Error("added although revoked during the check")
	}

	other := tokentest.Issue(t, f.set, 2*time.Minute)
	ov, _ := f.verify.Verify(other)
	ticket = f.cache.Begin()
	f.cache.Distrust()
	f.cache.Resync()
	f.cache.Add(ticket, other, ov, []string{ov.BlacklistID})
	if f.hit(other) {
		t.Error("added across a resync")
	}

	ticket = f.cache.Begin()
	f.clock.Add(3 * time.Second)
	f.cache.Add(ticket, other, ov, []string{ov.BlacklistID})
	if f.hit(other) {
		t.Error("added after a check slower than the race window")
	}
}

func TestNew_RejectsANegativeSize(t *testing.T) {
	if _, err := verifycache.New(&swappableKeys{}, verifycache.Options{Size: -1}); err == nil {
		t.Fatal("negative size accepted")
	}
}

func TestCache_ForgetsRevocationsAfterTheRaceWindow(t *testing.T) {
	f := newFixture(t, 10)
	tok := tokentest.Issue(t, f.set, time.Hour)
	v, err := f.verify.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	f.cache.Revoke(v.BlacklistID)
	for i := range 1000 {
		f.clock.Add(10 * time.Millisecond)
		f.cache.Revoke("sig:other-" + time.Duration(i).String())
	}
	// 10 s later the early revocation is forgotten by the cache (Redis still holds
	// it; a token reaches Add only after the blacklist said it is not listed).
	f.cache.Add(f.cache.Begin(), tok, v, []string{v.BlacklistID})
	if !f.hit(tok) {
		t.Error("a revocation older than the race window still blocks the cache")
	}
}

// TestCache_PurgeEmptiesAndKeepsTrust: after a store data loss every held token must
// be checked again, so Purge drops every entry, and an insertion begun before it; it
// does not trust a distrusted cache.
func TestCache_PurgeEmptiesAndKeepsTrust(t *testing.T) {
	f := newFixture(t, 10)
	held := tokentest.Issue(t, f.set, time.Minute)
	f.add(held)
	inFlight := tokentest.Issue(t, f.set, time.Minute)
	v, err := f.verify.Verify(inFlight)
	if err != nil {
		t.Fatal(err)
	}
	ticket := f.cache.Begin()
	f.cache.Purge()
	f.cache.Add(ticket, inFlight, v, []string{v.BlacklistID})
	if f.hit(held) || f.hit(inFlight) {
		t.Fatal("a token held or begun before the purge still hits")
	}
	if !f.cache.Trusted() {
		t.Fatal("Purge distrusted a trusted cache")
	}
	f.cache.Distrust()
	f.cache.Purge()
	if f.cache.Trusted() {
		t.Fatal("Purge trusted a distrusted cache")
	}
}
