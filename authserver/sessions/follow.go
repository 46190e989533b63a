package sessions

import "github.com/hiringo/auth-operator/authserver/verifycache"

// KeyRevoker takes revoked signing keys out of the current key set (keyset.Store).
type KeyRevoker interface {
	RevokeKeys(kids ...string)
}

// Revocations is what a verifier keeps in step with the revocation channel
// (blacklist.Store.Follow): its verified-token cache, when it has one, and its key
// set, from which a revoked kid leaves at once.
type Revocations struct {
	Cache *verifycache.Cache
	Keys  KeyRevoker
}

// Revoke drops the cached tokens revocation id covers.
func (r Revocations) Revoke(id string) {
	if r.Cache != nil {
		r.Cache.Revoke(id)
	}
}

// Distrust bypasses the cache while revocations may be missed.
func (r Revocations) Distrust() {
	if r.Cache != nil {
		r.Cache.Distrust()
	}
}

// Resync empties and trusts the cache again.
func (r Revocations) Resync() {
	if r.Cache != nil {
		r.Cache.Resync()
	}
}

// RevokeKeys takes kids out of the key set; a cached token of such a key no longer
// answers, as its key is no longer published.
func (r Revocations) RevokeKeys(kids ...string) {
	if len(kids) > 0 {
		r.Keys.RevokeKeys(kids...)
	}
}
