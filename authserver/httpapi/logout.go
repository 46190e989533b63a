package httpapi

import (
	"context"
	"errors"
	"net/http"

	"github.com/hiringo/auth-operator/authserver/audit"
	"github.com/hiringo/auth-operator/authserver/blacklist"
	"github.com/hiringo/auth-operator/authserver/token"
)

// logoutPayload is the payload of a successful logout: the user's id.
type logoutPayload struct {
	ID string `json:"id"`
}

// logout revokes the presented token's login session stamp, or the token alone when
// it has no session (POST /auth/logout).
func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	s.serveLogout(w, r, audit.Logout, s.cfg.Sessions.Logout)
}

// logoutAll revokes every token of the presented token's user issued up to now
// (POST /auth/logout/all).
func (s *Server) logoutAll(w http.ResponseWriter, r *http.Request) {
	s.serveLogout(w, r, audit.LogoutAll, s.cfg.Sessions.LogoutAll)
}

func (s *Server) serveLogout(w http.ResponseWriter, r *http.Request, event audit.Event, op func(context.Context, string) (token.Verified, error)) {
	if !allowMethods(w, r, "POST", http.MethodPost) {
		return
	}
	raw, err := token.FromHeader(r.Header)
	if err != nil {
		writeError(w, s.missingTokenStatus(), msgMissingToken)
		return
	}
	v, err := op(r.Context(), raw)
	if err != nil {
		status, msg := s.failure("logout", err, s.blacklistedStatus())
		writeError(w, status, msg)
		return
	}
	audit.Log(r.Context(), s.cfg.Logger, audit.Record{
		Event: event, UserID: v.Claims.User.ID, SessionID: v.Claims.User.Auth.ID, KeyID: v.KeyID,
	})
	writeSuccess(w, http.StatusOK, func(b []byte) []byte { return appendLogoutPayload(b, v.Claims.User.ID) })
}

// appendLogoutPayload appends logoutPayload{ID: id} as json.Marshal writes it.
func appendLogoutPayload(b []byte, id string) []byte {
	b = append(b, `{"id":`...)
	b = appendJSONString(b, id)
	return append(b, '}')
}

// failure maps an error of the sessions service to the status and message to answer
// with: 401 and the verifier's message for a bad token, revoked for a logged-out one,
// 503 when no keys are loaded or the store is unavailable.
func (s *Server) failure(op string, err error, revoked int) (int, string) {
	var invalid *token.InvalidError
	switch {
	case errors.As(err, &invalid):
		return http.StatusUnauthorized, invalid.Error()
	case errors.Is(err, token.ErrNoKeys):
		return http.StatusServiceUnavailable, msgNoKeys
	case errors.Is(err, blacklist.ErrRevoked):
		return revoked, msgBlacklisted
	default:
		s.cfg.Logger.Warn(op+" failed: blacklist store unavailable", "err", err)
		return http.StatusServiceUnavailable, msgStoreDown
	}
}

func (s *Server) missingTokenStatus() int {
	if s.cfg.CompatStatusCodes {
		return http.StatusBadRequest
	}
	return http.StatusUnauthorized
}

func (s *Server) blacklistedStatus() int {
	if s.cfg.CompatStatusCodes {
		return http.StatusInternalServerError
	}
	return http.StatusUnauthorized
}
