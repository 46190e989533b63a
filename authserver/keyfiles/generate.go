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

	"github.com/hiringo/auth-operator/authserver/keydomain"
)

// GenerateKey makes a fresh P-256 key in the given state, created at now, with its
// refresh-token key. Active keys are stamped as activated at now.
func GenerateKey(state keydomain.State, now time.Time) (keydomain.Key, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return keydomain.Key{}, fmt.Errorf("generating P-256 key: %w", err)
	}
	kid, err := KeyID(&priv.PublicKey)
	if err != nil {
		return keydomain.Key{}, err
	}
	refresh, err := GenerateRefreshKey()
	if err != nil {
		return keydomain.Key{}, err
	}
	now = now.UTC().Truncate(time.Second)
	k := keydomain.Key{
		KeyMeta: keydomain.KeyMeta{ID: kid, State: state, CreatedAt: now},
		Public:  &priv.PublicKey,
		Private: priv,
		Refresh: refresh,
	}
	if state == keydomain.StateActive {
		k.Activate(now)
	}
	return k, nil
}

// GenerateRefreshKey makes a fresh P-256 refresh-token key.
func GenerateRefreshKey() (*keydomain.RefreshKey, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating P-256 refresh key: %w", err)
	}
	id, err := KeyID(&priv.PublicKey)
	if err != nil {
		return nil, err
	}
	return &keydomain.RefreshKey{ID: id, Public: &priv.PublicKey, Private: priv}, nil
}

// WithRefreshKeys returns s with a fresh refresh-token key for each next or active key
// that has none (a set written before refresh keys existed), and whether it added any.
// Retired keys are left as they are: they sign nothing any more.
func WithRefreshKeys(s keydomain.Set) (keydomain.Set, bool, error) {
	out := keydomain.Set{Keys: make([]keydomain.Key, 0, len(s.Keys))}
	added := false
	for _, k := range s.Keys {
		if k.Refresh == nil && k.State != keydomain.StateRetired {
			r, err := GenerateRefreshKey()
			if err != nil {
				return keydomain.Set{}, false, err
			}
			k.Refresh = r
			added = true
		}
		out.Keys = append(out.Keys, k)
	}
	return out, added, nil
}

// NewSet makes the set the operator starts an AuthService with: an active key and a
// next key, created together.
func NewSet(now time.Time) (keydomain.Set, error) {
	active, err := GenerateKey(keydomain.StateActive, now)
	if err != nil {
		return keydomain.Set{}, err
	}
	next, err := GenerateKey(keydomain.StateNext, now)
	if err != nil {
		return keydomain.Set{}, err
	}
	return keydomain.Set{Keys: []keydomain.Key{active, next}}, nil
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
