package httpapi

import (
	"errors"
	"net/http"

	"github.com/hiringo/auth-operator/authserver/blacklist"
	"github.com/hiringo/auth-operator/authserver/token"
	"github.com/hiringo/auth-operator/authserver/verifycache"
)

// msgNoIntrospection is the 403 description for a caller that is not listed.
const msgNoIntrospection = "caller may not introspect tokens"

// introspection is the RFC 7662 answer for an active token. sub is user.id for every
// token, seed-format ones included; the other claims are left out when the token has
// none.
type introspection struct {
	Active    bool     `json:"active"`
	TokenType string   `json:"token_type"`
	Subject   string   `json:"sub"`
	ClientID  string   `json:"client_id,omitempty"`
	SessionID string   `json:"sid,omitempty"`
	Email     string   `json:"email,omitempty"`
	Issuer    string   `json:"iss,omitempty"`
	Audience  []string `json:"aud,omitempty"`
	TokenID   string   `json:"jti,omitempty"`
	ExpiresAt int64    `json:"exp"`
	IssuedAt  int64    `json:"iat,omitempty"`
}

// inactive is the whole answer for any token that is not an active access token
// (RFC 7662 section 2.2: nothing else is said about it).
var inactive = struct {
	Active bool `json:"active"`
}{}

// introspect is RFC 7662 token introspection (POST /auth/introspect) for the resource
// servers and gateways listed as introspection clients: the token is checked exactly
// as forward auth checks it (the verified-token cache, else the signature, the claims
// and the revocation store in one round trip), so a logged-out, session-revoked,
// expired, foreign or refresh token is {"active":false}. 503 only when the keys or the
// store cannot answer.
func (s *Server) introspect(w http.ResponseWriter, r *http.Request) {
	if !allowMethods(w, r, "POST", http.MethodPost) {
		return
	}
	if _, ok := s.authorizeOAuthCaller(w, r, s.cfg.Introspection, msgNoIntrospection); !ok {
		return
	}
	form, err := readForm(r, []string{"token"}, "token_type_hint")
	if err != nil {
		writeOAuthError(w, http.StatusBadRequest, oauthInvalidRequest, err.Error())
		return
	}
	// The hint names where to look first; the verifier knows access tokens only, so
	// it changes nothing (RFC 7662 section 2.1: the search extends to every type).
	p, err := s.cfg.Sessions.Verify(r.Context(), form.Get("token"))
	var invalid *token.InvalidError
	switch {
	case err == nil:
		writeOAuth(w, http.StatusOK, introspectionOf(p))
	case errors.As(err, &invalid), errors.Is(err, blacklist.ErrRevoked):
		writeOAuth(w, http.StatusOK, inactive)
	default:
		s.oauthFailure(w, "introspection", err)
	}
}

func introspectionOf(p verifycache.Principal) introspection {
	out := introspection{
		Active: true, TokenType: "Bearer", Subject: p.UserID, ClientID: p.ClientID, SessionID: p.SessionID,
		Email: p.Email, Issuer: p.Issuer, Audience: p.Audience, TokenID: p.TokenID, ExpiresAt: p.ExpiresAt.Unix(),
	}
	if !p.IssuedAt.IsZero() {
		out.IssuedAt = p.IssuedAt.Unix()
	}
	return out
}
