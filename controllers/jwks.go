package controllers

import (
	"encoding/json"
	"fmt"

	"github.com/go-jose/go-jose/v4"

	"github.com/hiringo/auth-operator/authserver/keyfiles"
)

// renderJWKS renders the public keys of a set as a JSON Web Key Set, in manifest order.
// It never includes private material.
func renderJWKS(s keyfiles.Set) ([]byte, error) {
	set := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, 0, len(s.Keys))}
	for _, k := range s.Keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.Public, KeyID: k.ID, Algorithm: keyfiles.AlgorithmES256, Use: "sig"})
	}
	out, err := json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("encoding JWKS: %w", err)
	}
	return append(out, '\n'), nil
}
