package keyfiles

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// GenerateKey makes a fresh P-256 key in the given state, created at now.
// Active keys are stamped as activated at now.
func GenerateKey(state State, now time.Time) (Key, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Key{}, fmt.Errorf("generating P-256 key: %w", err)
	}
	kid, err := KeyID(&priv.PublicKey)
	if err != nil {
		return Key{}, err
	}
	now = now.UTC().Truncate(time.Second)
	k := Key{
		KeyMeta: KeyMeta{ID: kid, State: state, CreatedAt: now},
		Public:  &priv.PublicKey,
		Private: priv,
	}
	if state == StateActive {
		k.ActivatedAt = &now
	}
	return k, nil
}

// NewSet makes the set the operator starts an AuthService with: an active key and a
// next key, created together.
func NewSet(now time.Time) (Set, error) {
	active, err := GenerateKey(StateActive, now)
	if err != nil {
		return Set{}, err
	}
	next, err := GenerateKey(StateNext, now)
	if err != nil {
		return Set{}, err
	}
	return Set{Keys: []Key{active, next}}, nil
}

// KeyID is the kid of a public key: its RFC 7638 SHA-256 JWK thumbprint, base64url
// without padding. It is stable, derived from public material only, and a valid
// Secret data key.
func KeyID(pub *ecdsa.PublicKey) (string, error) {
	sum, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("computing key thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(sum), nil
}
