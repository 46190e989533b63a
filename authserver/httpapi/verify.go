package httpapi

import (
	"net/http"
	"strconv"

	"github.com/hiringo/auth-operator/authserver/token"
	"github.com/hiringo/auth-operator/authserver/verifycache"
)

// Headers a successful forward-auth check adds for the protected service.
const (
	HeaderUserID    = "X-Auth-User-Id"
	HeaderUserEmail = "X-Auth-User-Email"
	HeaderSessionID = "X-Auth-Session-Id"
)

// verifyPayload is the payload of a successful check.
type verifyPayload struct {
	ID        string `json:"id"`
	Email     string `json:"email"`
	SessionID string `json:"session_id"`
	ExpiresAt int64  `json:"exp"`
}

// verify is the forward-auth check (any method, /auth/verify and every path below it) for
// nginx auth_request, Traefik ForwardAuth and Envoy ext_authz: 200 with the user's headers,
// 401 for any bad, expired or blacklisted token (never 400 or 500, which nginx turns
// into 500), 503 only when the blacklist cannot be read. A token found in the
// verified-token cache skips the signature check and the blacklist read.
func (s *Server) verify(w http.ResponseWriter, r *http.Request) {
	w.Header()[headerCacheControl] = valueNoStore
	raw, err := token.FromHeader(r.Header)
	if err != nil {
		w.Header()[headerWWWAuth] = valueBearer
		writeError(w, http.StatusUnauthorized, msgMissingToken)
		return
	}
	p, err := s.cfg.Sessions.Verify(r.Context(), raw)
	if err != nil {
		status, msg := s.failure("verify", err, http.StatusUnauthorized)
		if status == http.StatusUnauthorized {
			w.Header()[headerWWWAuth] = valueInvalidToken
		}
		writeError(w, status, msg)
		return
	}
	writeVerified(w, p)
}

// writeVerified answers 200 for a valid token: the user's headers and the envelope
// (json.Marshal's bytes of verifyPayload, appended without reflection: this is every
// cache hit). The three header values share one allocation.
func writeVerified(w http.ResponseWriter, p verifycache.Principal) {
	values := &[3]string{p.UserID, p.Email, p.SessionID}
	h := w.Header()
	h[HeaderUserID] = values[0:1:1]
	h[HeaderUserEmail] = values[1:2:2]
	h[HeaderSessionID] = values[2:3:3]
	writeSuccess(w, http.StatusOK, func(b []byte) []byte { return appendVerifyPayload(b, p) })
}

// appendVerifyPayload appends the verifyPayload of p as json.Marshal writes it.
func appendVerifyPayload(b []byte, p verifycache.Principal) []byte {
	b = append(b, `{"id":`...)
	b = appendJSONString(b, p.UserID)
	b = append(b, `,"email":`...)
	b = appendJSONString(b, p.Email)
	b = append(b, `,"session_id":`...)
	b = appendJSONString(b, p.SessionID)
	b = append(b, `,"exp":`...)
	b = strconv.AppendInt(b, p.ExpiresAt.Unix(), 10)
	return append(b, '}')
}
