package token

import (
	"errors"
	"net/http"
	"strings"
)

// ErrMissingToken is returned when a request carries no usable bearer token: no
// Authorization header, several of them, another scheme, or an empty token.
var ErrMissingToken = errors.New("missing or malformed jwt")

const bearerScheme = "Bearer"

// FromHeader extracts the bearer token of a request's Authorization header. The scheme
// is matched without regard to case, as RFC 9110 requires.
func FromHeader(h http.Header) (string, error) {
	values := h.Values("Authorization")
	if len(values) != 1 {
		return "", ErrMissingToken
	}
	return FromAuthorization(values[0])
}

// FromAuthorization extracts the token of one Authorization header value.
func FromAuthorization(v string) (string, error) {
	if len(v) <= len(bearerScheme)+1 || !strings.EqualFold(v[:len(bearerScheme)], bearerScheme) || v[len(bearerScheme)] != ' ' {
		return "", ErrMissingToken
	}
	tok := strings.TrimLeft(v[len(bearerScheme)+1:], " ")
	// Two byte searches rather than ContainsAny: this runs on every request and
	// IndexByte is vectorised.
	if tok == "" || strings.IndexByte(tok, ' ') >= 0 || strings.IndexByte(tok, '\t') >= 0 {
		return "", ErrMissingToken
	}
	return tok, nil
}
