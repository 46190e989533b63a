package keyfiles

import (
	"encoding/json"
	"fmt"

	"github.com/go-jose/go-jose/v4"

	"github.com/hiringo/auth-operator/authserver/keydomain"
)

// JWKS renders the public keys of a set as an RFC 7517 JSON Web Key Set, in manifest
// order, each with its kid, "use": "sig" and "alg": "ES256". It never includes private
// material. The operator's JWKS ConfigMap and the server's /.well-known/jwks.json are
// both this document.
func JWKS(s keydomain.Set) ([]byte, error) {
	set := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, 0, len(s.Keys))}
	for _, k := range s.Keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.Public, KeyID: k.ID, Algorithm: AlgorithmES256, Use: "sig"})
	}
	out, err := json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("encoding JWKS: %w", err)
	}
	return out, nil
}
