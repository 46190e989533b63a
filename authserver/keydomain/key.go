package keydomain

import (
	"crypto/ecdsa"
	"time"
)

// State is where a key stands in its lifecycle.
type State string

const (
	// StateNext keys are published and verify, but do not sign yet.
	StateNext State = "next"
	// StateActive is the one key that signs.
	StateActive State = "active"
	// StateRetired keys verify tokens they signed earlier; their private part is gone.
	StateRetired State = "retired"
)

// KeyMeta is the public metadata of one key. Its JSON names are those of the key
// set's manifest (keyfiles.Manifest), which records exactly this metadata per key.
type KeyMeta struct {
	// ID is the key's kid: the base64url RFC 7638 SHA-256 thumbprint of its public key.
	ID    string `json:"kid"`
	State State  `json:"state"`
	// CreatedAt is when the key was generated (and published, as next or active).
	CreatedAt time.Time `json:"createdAt"`
	// ActivatedAt is when the key started signing; nil while it is next.
	ActivatedAt *time.Time `json:"activatedAt,omitempty"`
	// RetiredAt is when the key stopped signing; set only for retired keys.
	RetiredAt *time.Time `json:"retiredAt,omitempty"`
	// ExpiresAt is when a retired key may be deleted: RetiredAt plus the operator's
	// minimum publish time (how late a pod may learn of the rotation and stop signing
	// with the key), the maximum token lifetime and the clock leeway. Set only for
	// retired keys.
	ExpiresAt *time.Time `json:"expiresAt,omitempty"`
	// RefreshExpiresAt is when a retired key leaves the set altogether: RetiredAt plus the
	// minimum publish time, the refresh token lifetime and the clock leeway, so no refresh
	// token it signed can still be valid. Between ExpiresAt and RefreshExpiresAt the key is
	// in the private Secret only (public part), for the issuer's refresh verification; the
	// public projection and the JWKS no longer list it. Set only for retired keys; absent
	// in sets written before refresh tokens existed, where ExpiresAt ends the key.
	RefreshExpiresAt *time.Time `json:"refreshExpiresAt,omitempty"`
}

// Key is one key of a set: its metadata, its public key and, for next and active keys,
// its private key.
type Key struct {
	KeyMeta
	Public  *ecdsa.PublicKey
	Private *ecdsa.PrivateKey
	// Refresh is the key's refresh-token key pair, nil in a set written before refresh
	// keys existed and in everything a verifier or a consumer reads.
	Refresh *RefreshKey
}

// RefreshKey signs the refresh tokens of the key it belongs to while that key is active.
// It is never published (not in the public projection, not in the JWKS), so no consumer
// that verifies tokens with the published keys can accept a refresh token as an access
// token. Its lifecycle is its key's: its private part goes when the key retires, its
// public part stays in the Secret, for the issuer, until the key's RefreshExpiresAt.
type RefreshKey struct {
	// ID is the refresh tokens' kid: the RFC 7638 thumbprint of Public, as for signing keys.
	ID      string
	Public  *ecdsa.PublicKey
	Private *ecdsa.PrivateKey
}

// Activate makes k the key that signs from at: the one place a key's activation is
// stamped, whether it is made active (a new key set) or promoted from next (a rotation).
func (k *Key) Activate(at time.Time) {
	k.State, k.ActivatedAt = StateActive, &at
}

// AccessOpen reports whether a key may still verify access tokens at now: next and active
// keys always, a retired key until its ExpiresAt (a retired key without one is treated as
// open, so nothing is withdrawn early).
func (k Key) AccessOpen(now time.Time) bool {
	if k.State != StateRetired || k.ExpiresAt == nil {
		return true
	}
	return now.Before(*k.ExpiresAt)
}
