package httpapi

import (
	"errors"
	"mime"
	"net/http"
	"time"

	"github.com/hiringo/auth-operator/authserver/audit"
	"github.com/hiringo/auth-operator/authserver/sessions"
)

// msgNoRevocation is the 403 description for a caller that is not listed.
const msgNoRevocation = "caller may not revoke tokens"

// revoke is RFC 7009 token revocation (POST /auth/revoke) for the issuance clients (a
// login service ending a user's session): a refresh token revokes its whole session, an
// access token its stamp (its login, as logout does), on every verifier at once. As the
// RFC says, a token that is invalid, unknown, expired or revoked before is answered 200
// as well; a token issued to another client (client_id) is refused (403); a failure of
// the keys or the store is 503: the client must assume the token still valid and retry.
func (s *Server) revoke(w http.ResponseWriter, r *http.Request) {
	if !allowMethods(w, r, "POST", http.MethodPost) {
		return
	}
	caller, ok := s.authorizeOAuthCaller(w, r, s.cfg.Clients, msgNoRevocation)
	if !ok {
		return
	}
	form, err := readForm(r, []string{"token"}, "token_type_hint")
	if err != nil {
		writeOAuthError(w, http.StatusBadRequest, oauthInvalidRequest, err.Error())
		return
	}
	// An unknown hint is ignored (RFC 7009 section 2.1).
	v, revoked, err := s.cfg.Sessions.Revoke(r.Context(), form.Get("token"), form.Get("token_type_hint") == "refresh_token", caller.Username())
	switch {
	case errors.Is(err, sessions.ErrOtherClient):
		writeOAuthError(w, http.StatusForbidden, oauthUnauthorizedClient, err.Error())
		return
	case err != nil:
		s.oauthFailure(w, "revocation", err)
		return
	}
	if revoked {
		audit.Log(r.Context(), s.cfg.Logger, audit.Record{
			Event: audit.Revoke, UserID: v.Claims.User.ID, SessionID: v.Claims.User.Auth.ID, KeyID: v.KeyID, Caller: caller.String(),
		})
	}
	w.Header()[headerCacheControl] = valueNoStore
	w.WriteHeader(http.StatusOK)
}

// tokenResponse is RFC 6749 section 5.1's successful token response.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
}

// refreshGrant is the refresh_token grant of the token endpoint (POST /auth/token with
// an application/x-www-form-urlencoded body, RFC 6749 section 6), for public clients:
// the refresh token is the credential, as on /auth/refresh, and the answer is the same
// rotation in RFC 6749's shape. client_id and scope are accepted and ignored: a public
// client's client_id proves nothing, and tokens carry no scopes.
func (s *Server) refreshGrant(w http.ResponseWriter, r *http.Request) {
	form, err := readForm(r, []string{"grant_type"}, "refresh_token", "client_id", "scope")
	if err != nil {
		writeOAuthError(w, http.StatusBadRequest, oauthInvalidRequest, err.Error())
		return
	}
	if gt := form.Get("grant_type"); gt != "refresh_token" {
		writeOAuthError(w, http.StatusBadRequest, oauthUnsupportedGrantType, "grant_type "+gt+" is not supported: only refresh_token")
		return
	}
	raw := form.Get("refresh_token")
	if raw == "" {
		writeOAuthError(w, http.StatusBadRequest, oauthInvalidRequest, "parameter refresh_token is required")
		return
	}
	pair, err := s.rotate(r, raw)
	if err != nil {
		switch status, msg := s.issuanceOutcome(w, err); status {
		case http.StatusUnauthorized:
			writeOAuthError(w, http.StatusBadRequest, oauthInvalidGrant, msg)
		case http.StatusTooManyRequests:
			writeOAuthError(w, http.StatusTooManyRequests, oauthUnavailable, msg)
		default:
			writeOAuthError(w, http.StatusServiceUnavailable, oauthUnavailable, msg)
		}
		return
	}
	writeOAuth(w, http.StatusOK, tokenResponse{
		AccessToken: pair.Access, TokenType: "Bearer", RefreshToken: pair.Refresh,
		ExpiresIn: max(int64(time.Until(pair.AccessExpiresAt).Seconds()), 0),
	})
}

// isForm reports whether r's body is form-encoded: the token endpoint's OAuth grants,
// rather than the JSON body of an issuance.
func isForm(r *http.Request) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && mt == contentTypeForm
}
