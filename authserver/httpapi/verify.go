package httpapi

import (
	"net/http"

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
	w.Header()[headerCacheControl] = []string{"no-store"}
	raw, err := token.FromHeader(r.Header)
	if err != nil {
		w.Header()[headerWWWAuth] = []string{`Bearer`}
		writeError(w, http.StatusUnauthorized, msgMissingToken)
		return
	}
	p, err := s.cfg.Sessions.Verify(r.Context(), raw)
	if err != nil {
		status, msg := s.failure("verify", err, http.StatusUnauthorized)
		if status == http.StatusUnauthorized {
			w.Header()[headerWWWAuth] = []string{`Bearer error="invalid_token"`}
		}
		writeError(w, status, msg)
		return
	}
	writeVerified(w, p)
}

// writeVerified answers 200 for a valid token: the user's headers and the envelope.
func writeVerified(w http.ResponseWriter, p verifycache.Principal) {
	h := w.Header()
	h[HeaderUserID] = []string{p.UserID}
	h[HeaderUserEmail] = []string{p.Email}
	h[HeaderSessionID] = []string{p.SessionID}
	writeEnvelope(w, http.StatusOK, true, msgSuccess, verifyPayload{
		ID: p.UserID, Email: p.Email, SessionID: p.SessionID, ExpiresAt: p.ExpiresAt.Unix(),
	})
}
