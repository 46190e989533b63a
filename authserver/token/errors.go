package token

import (
	"errors"
	"strings"

	"github.com/golang-jwt/jwt/v5"
)

// InvalidError is returned for a token that does not verify. Cause is the innermost
// reason, worded as the original service reported it.
type InvalidError struct {
	Cause string
	err   error
}

// Error returns the message clients see: "invalid or expired jwt, internal=<cause>".
func (e *InvalidError) Error() string { return "invalid or expired jwt, internal=" + e.Cause }

// Unwrap returns the parser's error, when there is one.
func (e *InvalidError) Unwrap() error { return e.err }

// ErrNoKeys is returned when no key set has been loaded yet.
var ErrNoKeys = errors.New("signing keys not loaded")

// errUnknownKID is the keyfunc's answer for a kid that no published key has.
var errUnknownKID = errors.New("unknown kid")

// Refusals of tokens that are well signed but not acceptable.
var (
	errNotRefresh      = errors.New("token is not a refresh token")
	errRefreshAsAccess = errors.New("token is a refresh token, not an access token")
	errNoUser          = errors.New("token names no user")
	errIssuer          = errors.New("token has an unexpected issuer")
	errSubject         = errors.New("token sub does not match user.id")
	errSessionID       = errors.New("token sid does not match user.auth.id")
	errNoAudience      = errors.New("aud claim is required")
	errAbsurdExp       = errors.New("token exp is out of range")
)

// wrapperPrefixes are the texts golang-jwt v5 puts before the cause it wraps. The
// original (golang-jwt v3) reported only the cause, so these are stripped.
var wrapperPrefixes = []string{
	jwt.ErrTokenSignatureInvalid.Error() + ": ",
	jwt.ErrTokenInvalidClaims.Error() + ": ",
	jwt.ErrTokenMalformed.Error() + ": ",
	jwt.ErrTokenUnverifiable.Error() + ": ",
	jwt.ErrTokenRequiredClaimMissing.Error() + ": ",
	"error while executing keyfunc: ",
}

// innermostCause returns err's message without golang-jwt's category prefixes, so a
// bad signature reads "crypto/ecdsa: verification error" and an expired token
// "token is expired".
func innermostCause(err error) string {
	msg := err.Error()
	for stripped := true; stripped; {
		stripped = false
		for _, p := range wrapperPrefixes {
			if strings.HasPrefix(msg, p) && len(msg) > len(p) {
				msg = msg[len(p):]
				stripped = true
			}
		}
	}
	return msg
}

func invalid(cause string, err error) *InvalidError {
	return &InvalidError{Cause: cause, err: err}
}
