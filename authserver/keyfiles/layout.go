package keyfiles

import (
	"crypto/ecdsa"
	"time"
)

// ManifestFile is the name of the file that lists every key of a set and its state.
const ManifestFile = "keyset.json"

// ManifestVersion is the version of the manifest format that this package writes.
const ManifestVersion = 1

// AlgorithmES256 is the only signing algorithm a key set holds today.
const AlgorithmES256 = "ES256"

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

// KeyMeta is the public metadata of one key, as the manifest records it.
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

// Manifest is the content of ManifestFile.
type Manifest struct {
	Version   int       `json:"version"`
	Algorithm string    `json:"alg"`
	Keys      []KeyMeta `json:"keys"`
}

// Key is one key of a set: its metadata, its public key and, for next and active keys,
// its private key.
type Key struct {
	KeyMeta
	Public  *ecdsa.PublicKey
	Private *ecdsa.PrivateKey
}

// Set is a whole key set, in manifest order.
type Set struct {
	Keys []Key
}

// PublicKeyFile is the name of the file holding the PKIX PEM public key of kid.
func PublicKeyFile(kid string) string { return kid + ".pub.pem" }

// PrivateKeyFile is the name of the file holding the PKCS#8 PEM private key of kid.
func PrivateKeyFile(kid string) string { return kid + ".key.pem" }

// Active returns the key that signs, or false when the set has none.
func (s Set) Active() (Key, bool) {
	return s.first(StateActive)
}

// Next returns the pre-published key that will sign after the next rotation.
func (s Set) Next() (Key, bool) {
	return s.first(StateNext)
}

// Lookup returns the key with the given kid.
func (s Set) Lookup(kid string) (Key, bool) {
	for _, k := range s.Keys {
		if k.ID == kid {
			return k, true
		}
	}
	return Key{}, false
}

func (s Set) first(state State) (Key, bool) {
	for _, k := range s.Keys {
		if k.State == state {
			return k, true
		}
	}
	return Key{}, false
}
