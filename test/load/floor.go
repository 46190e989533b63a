package main

import (
	"crypto/ecdsa"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/golang-jwt/jwt/v5"

	"github.com/hiringo/auth-operator/authserver/keyfiles"
)

// Floor kinds: what the reference servers do per request.
const (
	floorPlain  = "plain"
	floorVerify = "verify"
)

// runFloor serves one floor kind on addr until the process is killed: "plain" answers
// 200 to everything (the HTTP floor); "verify" checks the ES256 signature of the bearer
// token against the active key of keysDir and answers 200 or 401 (the crypto+HTTP
// floor). Neither parses claims, talks to Redis or writes a body.
func runFloor(kind, addr, keysDir string) error {
	var h http.Handler
	switch kind {
	case floorPlain:
		h = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	case floorVerify:
		set, err := keyfiles.ReadDir(keysDir)
		if err != nil {
			return err
		}
		active, ok := set.Active()
		if !ok {
			return errors.New("floor: key set has no active key")
		}
		h = verifyFloor(active.Public)
	default:
		return fmt.Errorf("unknown floor kind %q", kind)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return http.Serve(ln, h)
}

func verifyFloor(pub *ecdsa.PublicKey) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		i := strings.LastIndexByte(tok, '.')
		if !ok || i < 0 {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		sig, err := base64.RawURLEncoding.DecodeString(tok[i+1:])
		if err != nil || jwt.SigningMethodES256.Verify(tok[:i], sig, pub) != nil {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
}
