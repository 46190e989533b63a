package keyset

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/hiringo/auth-operator/authserver/keydomain"
	"github.com/hiringo/auth-operator/authserver/keyfiles"
)

// versionPart is what k adds to its set's version: its kid, its state and, in an
// issuer's set, its refresh-token key's kid, so that a Secret given refresh-token keys
// is a new version (and swapped in) although its keys and states are the same.
func versionPart(k keydomain.Key) string {
	if k.Refresh != nil {
		return k.ID + "=" + string(k.State) + "+" + k.Refresh.ID
	}
	return k.ID + "=" + string(k.State)
}

// publicOf is k without its private parts, as a set holds it.
func publicOf(k keydomain.Key) keydomain.Key {
	k.Private = nil
	if k.Refresh != nil {
		k.Refresh = &keydomain.RefreshKey{ID: k.Refresh.ID, Public: k.Refresh.Public}
	}
	return k
}

// Set is an immutable snapshot of the published keys. Everything a request needs from
// it (the JWKS document, the active key's PEM) is computed once, when it is loaded.
type Set struct {
	// keys are the published keys, public material only.
	keys    keydomain.Set
	keyless []*ecdsa.PublicKey
	byID    map[string]*ecdsa.PublicKey
	// refresh holds the public refresh-token keys by their kid: the issuer's set only
	// (a verifier's never has any, see keyfiles.DecodePublic).
	refresh   map[string]refreshKey
	active    keydomain.Key
	jwks      []byte
	activePEM []byte
	version   string
	// signer is the active key with its private part, only in a set loaded for
	// signing (Options.Private).
	signer *keydomain.Key
}

// without returns s without the keys of revoked, or s itself when it holds none of
// them. A revoked active key leaves the set without an active key: the public key
// document and signing are then unavailable until a new set loads.
func (s *Set) without(revoked map[string]bool) *Set {
	hit := false
	for _, k := range s.keys.Keys {
		hit = hit || revoked[k.ID]
	}
	if !hit {
		return s
	}
	out := &Set{byID: make(map[string]*ecdsa.PublicKey, len(s.byID)), refresh: map[string]refreshKey{}, jwks: s.jwks}
	parts := []string{}
	for _, k := range s.keys.Keys {
		if revoked[k.ID] {
			parts = append(parts, k.ID+"=revoked")
			continue
		}
		out.keys.Keys = append(out.keys.Keys, k)
		out.byID[k.ID] = k.Public
		if k.Refresh != nil {
			out.refresh[k.Refresh.ID] = s.refresh[k.Refresh.ID]
		}
		parts = append(parts, versionPart(k))
	}
	for _, pub := range s.keyless {
		if kid, err := keyfiles.KeyID(pub); err == nil && !revoked[kid] {
			out.keyless = append(out.keyless, pub)
		}
	}
	if !revoked[s.active.ID] {
		out.active, out.activePEM, out.signer = s.active, s.activePEM, s.signer
	}
	if doc, err := keyfiles.JWKS(out.keys); err == nil {
		out.jwks = doc
	}
	sort.Strings(parts)
	out.version = strings.Join(parts, ",")
	return out
}

// withSigner returns a copy of s that can sign with the active key of files.
func (s *Set) withSigner(files keydomain.Set) (*Set, error) {
	active, ok := files.Active()
	if !ok || active.Private == nil {
		return nil, fmt.Errorf("key set has no active private key")
	}
	out := *s
	out.signer = &active
	return &out, nil
}

// Signer returns the active key with its private part; false in a set of public
// material only (a verifier's).
func (s *Set) Signer() (keydomain.Key, bool) {
	if s.signer == nil {
		return keydomain.Key{}, false
	}
	return *s.signer, true
}

// NewSet builds a snapshot from a decoded key-file set. Private keys are not kept.
func NewSet(s keydomain.Set) (*Set, error) {
	active, ok := s.Active()
	if !ok {
		return nil, fmt.Errorf("key set has no active key")
	}
	out := &Set{
		keys:    keydomain.Set{Keys: make([]keydomain.Key, 0, len(s.Keys))},
		byID:    make(map[string]*ecdsa.PublicKey, len(s.Keys)),
		refresh: map[string]refreshKey{},
	}
	versionParts := make([]string, 0, len(s.Keys))
	for _, k := range s.Keys {
		key := publicOf(k)
		if k.Refresh != nil {
			out.refresh[k.Refresh.ID] = refreshKey{public: k.Refresh.Public, of: k.ID}
		}
		out.keys.Keys = append(out.keys.Keys, key)
		out.byID[k.ID] = k.Public
		versionParts = append(versionParts, versionPart(key))
		if k.ID == active.ID {
			out.active = key
		}
	}
	doc, err := keyfiles.JWKS(s)
	if err != nil {
		return nil, err
	}
	out.jwks = doc
	der, err := x509.MarshalPKIXPublicKey(active.Public)
	if err != nil {
		return nil, fmt.Errorf("encoding active public key: %w", err)
	}
	out.activePEM = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	out.keyless = keylessCandidates(s)
	sort.Strings(versionParts)
	out.version = strings.Join(versionParts, ",")
	return out, nil
}

// Lookup returns the public key with the given kid.
func (s *Set) Lookup(kid string) (*ecdsa.PublicKey, bool) {
	k, ok := s.byID[kid]
	return k, ok
}

// refreshKey is a public refresh-token key and the kid of the signing key it belongs to.
type refreshKey struct {
	public *ecdsa.PublicKey
	of     string
}

// LookupRefresh returns the public refresh-token key with the given kid and the kid of
// the signing key it belongs to; only an issuer's set has any.
func (s *Set) LookupRefresh(kid string) (*ecdsa.PublicKey, string, bool) {
	k, ok := s.refresh[kid]
	return k.public, k.of, ok
}

// Keys returns every published key (next, active, retired) in manifest order.
// The slice must not be modified.
func (s *Set) Keys() []keydomain.Key { return s.keys.Keys }

// MaxKeylessKeys is how many keys a token without kid is tried against: the active
// key, the next key and the most recently retired ones. A manual rotation storm that
// leaves hundreds of retired keys published cannot make one such token cost hundreds
// of signature checks; tokens with a kid (every token this service issues) are
// checked against their key only.
const MaxKeylessKeys = 4

// Keyless returns the keys a token without kid is tried against, at most
// MaxKeylessKeys: active, next, then retired keys, most recently retired first.
func (s *Set) Keyless() []*ecdsa.PublicKey { return s.keyless }

func keylessCandidates(s keydomain.Set) []*ecdsa.PublicKey {
	rank := func(k keydomain.Key) int {
		switch k.State {
		case keydomain.StateActive:
			return 0
		case keydomain.StateNext:
			return 1
		}
		return 2
	}
	keys := slices.Clone(s.Keys)
	slices.SortStableFunc(keys, func(a, b keydomain.Key) int {
		if c := rank(a) - rank(b); c != 0 {
			return c
		}
		if a.RetiredAt != nil && b.RetiredAt != nil {
			return b.RetiredAt.Compare(*a.RetiredAt)
		}
		return 0
	})
	out := make([]*ecdsa.PublicKey, 0, min(len(keys), MaxKeylessKeys))
	for _, k := range keys[:min(len(keys), MaxKeylessKeys)] {
		out = append(out, k.Public)
	}
	return out
}

// Active returns the key that signs.
func (s *Set) Active() keydomain.Key { return s.active }

// JWKS returns the RFC 7517 JSON Web Key Set of every published key, public parts only.
func (s *Set) JWKS() []byte { return s.jwks }

// ActivePEM returns the active public key as a PKIX PEM block.
func (s *Set) ActivePEM() []byte { return s.activePEM }

// Version identifies the set's content: two sets with the same kids in the same states
// have the same version.
func (s *Set) Version() string { return s.version }
