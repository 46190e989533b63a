package httpapi

import (
	"errors"
	"net/http"

	"github.com/hiringo/auth-operator/authserver/blacklist"
	"github.com/hiringo/auth-operator/authserver/token"
)

// logoutPayload is the payload of a successful logout: the user's id.
type logoutPayload struct {
	ID string `json:"id"`
}

// logout blacklists the presented token until it expires (POST /auth/logout).
func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	if !allowMethods(w, r, "POST", http.MethodPost) {
		return
	}
	raw, err := token.FromHeader(r.Header)
	if err != nil {
		writeError(w, s.missingTokenStatus(), msgMissingToken)
		return
	}
	v, status, msg := s.check(raw)
	if status != 0 {
		writeError(w, status, msg)
		return
	}
	err = s.cfg.Blacklist.Add(r.Context(), v.BlacklistID, v.ExpiresAt.Add(s.cfg.Verifier.Leeway()))
	if s.cfg.Cache != nil && (err == nil || errors.Is(err, blacklist.ErrAlreadyBlacklisted)) {
		s.cfg.Cache.Revoke(v.BlacklistID)
	}
	switch {
	case err == nil:
		writeEnvelope(w, http.StatusOK, true, msgSuccess, logoutPayload{ID: v.Claims.User.ID})
	case errors.Is(err, blacklist.ErrAlreadyBlacklisted):
		writeError(w, s.blacklistedStatus(), msgBlacklisted)
	default:
		s.cfg.Logger.Warn("logout failed: blacklist store unavailable", "err", err)
		writeError(w, http.StatusServiceUnavailable, msgStoreDown)
	}
}

// check verifies raw. On failure it returns the status and message to answer with:
// 401 and the verifier's message for a bad token, 503 when no keys are loaded.
func (s *Server) check(raw string) (token.Verified, int, string) {
	v, err := s.cfg.Verifier.Verify(raw)
	switch {
	case err == nil:
		return v, 0, ""
	case errors.Is(err, token.ErrNoKeys):
		return token.Verified{}, http.StatusServiceUnavailable, msgNoKeys
	default:
		return token.Verified{}, http.StatusUnauthorized, err.Error()
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
