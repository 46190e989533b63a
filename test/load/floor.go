package main

import (
	"crypto/ecdsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"

	"github.com/golang-jwt/jwt/v5"

	"github.com/hiringo/auth-operator/authserver/keyfiles"
)

// Floor kinds: what the reference servers do per request.
const (
	floorPlain  = "plain"
	floorVerify = "verify"
	floorSign   = "sign"
)

// recorded is a response the plain floor replays: the auth server's answer to a
// cached verify, captured at the start of the run.
type recorded struct {
	Status int                 `json:"status"`
	Header map[string][]string `json:"header"`
	Body   []byte              `json:"body"`
}

// runFloor serves one floor kind on addr until the process is killed:
//   - "plain" writes the recorded response of responseFile (status, headers, body):
//     net/http and nothing else, the floor of a cache hit;
//   - "verify" checks the ES256 signature of the bearer token against the active key
//     of keysDir and answers 200 or 401 (the crypto+HTTP floor of a check or logout);
//   - "sign" makes the two ES256 signatures an issuance makes (access and refresh
//     token) with the active key and answers 200 (the floor of issuance).
//
// None parses claims or talks to Redis.
func runFloor(kind, addr, keysDir, responseFile string) error {
	var h http.Handler
	switch kind {
	case floorPlain:
		b, err := os.ReadFile(responseFile)
		if err != nil {
			return err
		}
		var rec recorded
		if err := json.Unmarshal(b, &rec); err != nil {
			return fmt.Errorf("reading the recorded response: %w", err)
		}
		h = plainFloor(rec)
	case floorVerify, floorSign:
		set, err := keyfiles.ReadDir(keysDir)
		if err != nil {
			return err
		}
		active, ok := set.Active()
		if !ok {
			return errors.New("floor: key set has no active key")
		}
		if kind == floorVerify {
			h = verifyFloor(active.Public)
		} else {
			h = signFloor(active.Private)
		}
	default:
		return fmt.Errorf("unknown floor kind %q", kind)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return http.Serve(ln, h)
}

// plainFloor writes rec as a handler that knows its answer would: shared header
// values, one Write.
func plainFloor(rec recorded) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		h := w.Header()
		for k, v := range rec.Header {
			h[k] = v
		}
		w.WriteHeader(rec.Status)
		_, _ = w.Write(rec.Body)
	})
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

// signingInput is what the sign floor signs: a header and claims of an issued token's
// size.
const signingInput = "eyJhbGciOiJFUzI1NiIsImtpZCI6ImZsb29yIiwidHlwIjoiSldUIn0." +
	"eyJ1c2VyIjp7ImlkIjoidS03IiwibmFtZSI6IlUiLCJlbWFpbCI6InU3QGV4YW1wbGUuY29tIiwiZW1haWxfdmVyaWZpZWRfYXQiOm51bGwsImNyZWF0ZWRfYXQiOiIiLCJ1cGRhdGVkX2F0IjoiIiwiYXV0aCI6eyJpZCI6IjAwMDAwMDAwLTAwMDAtMDAwMC0wMDAwLTAwMDAwMDAwMDAwMCIsInRva2VuIjoiQUFBQUFBQUFBQUFBQUFBQUFBQUFBQSJ9fSwiaXNzIjoiaHR0cDovL2F1dGgiLCJleHAiOjE3NjcyMjU2MDAsIm5iZiI6MTc2NzIyNDY5OSwiaWF0IjoxNzY3MjI0NzAwfQ"

func signFloor(key *ecdsa.PrivateKey) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		for range 2 {
			if _, err := jwt.SigningMethodES256.Sign(signingInput, key); err != nil {
				w.WriteHeader(http.StatusInternalServerError)
				return
			}
		}
		w.WriteHeader(http.StatusOK)
	})
}
