package httpapi

import (
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"net/url"

	"github.com/hiringo/auth-operator/authserver/clientauth"
	"github.com/hiringo/auth-operator/authserver/token"
)

// The OAuth 2.0 endpoints (RFC 7662 introspection, RFC 7009 revocation, the refresh_token
// grant of RFC 6749's token endpoint) answer as those RFCs say, for the libraries and
// gateways that call them: form-encoded requests, plain JSON answers, and errors as
// RFC 6749 section 5.2 shapes them ({"error","error_description"}), not the envelope.

// RFC 6749 error codes.
const (
	oauthInvalidRequest       = "invalid_request"
	oauthInvalidClient        = "invalid_client"
	oauthUnauthorizedClient   = "unauthorized_client"
	oauthInvalidGrant         = "invalid_grant"
	oauthUnsupportedGrantType = "unsupported_grant_type"
	oauthUnavailable          = "temporarily_unavailable"
)

const contentTypeForm = "application/x-www-form-urlencoded"

// oauthError is the body of every failure of the OAuth endpoints.
type oauthError struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

var (
	valuePlainJSON = []string{"application/json"}
	valueNoCache   = []string{"no-cache"}
)

// writeOAuth writes v as the JSON body of an OAuth answer, never cached (RFC 6749
// section 5.1 asks for Cache-Control: no-store and Pragma: no-cache).
func writeOAuth(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		body = []byte(`{"error":"server_error"}`)
	}
	h := w.Header()
	h["Content-Type"] = valuePlainJSON
	h[headerCacheControl] = valueNoStore
	h["Pragma"] = valueNoCache
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func writeOAuthError(w http.ResponseWriter, status int, code, description string) {
	if status == http.StatusUnauthorized {
		w.Header()[headerWWWAuth] = valueBearer
	}
	writeOAuth(w, status, oauthError{Error: code, Description: description})
}

// errBadForm says what is wrong with a request body; its text is the
// error_description of the 400.
type errBadForm struct{ msg string }

func (e *errBadForm) Error() string { return e.msg }

// readForm parses an application/x-www-form-urlencoded body (parameters in the query
// string are not read: RFC 7662 and 7009 send them in the body) and checks that every
// parameter of single appears at most once and each of required is there, non-empty.
func readForm(r *http.Request, required []string, single ...string) (url.Values, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != contentTypeForm {
		return nil, &errBadForm{"the body must be " + contentTypeForm}
	}
	if err := r.ParseForm(); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, &errBadForm{"the body is too large"}
		}
		return nil, &errBadForm{"the body is not " + contentTypeForm}
	}
	form := r.PostForm
	for _, name := range append(single, required...) {
		if len(form[name]) > 1 {
			return nil, &errBadForm{"parameter " + name + " is given more than once"}
		}
	}
	for _, name := range required {
		if form.Get(name) == "" {
			return nil, &errBadForm{"parameter " + name + " is required"}
		}
	}
	return form, nil
}

// authorizeOAuthCaller authenticates the caller of introspection or revocation by its
// projected ServiceAccount token (Bearer) and checks it against clients; it answers
// 401, 403 or 503 itself and returns false when the caller may not go on. denied is
// the description of the 403.
func (s *Server) authorizeOAuthCaller(w http.ResponseWriter, r *http.Request, clients Authorizer, denied string) (clientauth.ServiceAccount, bool) {
	bearer, err := token.FromHeader(r.Header)
	if err != nil {
		writeOAuthError(w, http.StatusUnauthorized, oauthInvalidClient, msgUnauthenticated)
		return clientauth.ServiceAccount{}, false
	}
	if clients == nil {
		writeOAuthError(w, http.StatusForbidden, oauthUnauthorizedClient, denied)
		return clientauth.ServiceAccount{}, false
	}
	caller, err := clients.Authorize(r.Context(), bearer)
	switch {
	case err == nil:
		return caller, true
	case errors.Is(err, clientauth.ErrUnauthenticated):
		writeOAuthError(w, http.StatusUnauthorized, oauthInvalidClient, msgUnauthenticated)
	case errors.Is(err, clientauth.ErrForbidden):
		writeOAuthError(w, http.StatusForbidden, oauthUnauthorizedClient, denied)
	default:
		s.cfg.Logger.Warn("caller authentication failed: token review unavailable", "err", err)
		writeOAuthError(w, http.StatusServiceUnavailable, oauthUnavailable, msgReviewDown)
	}
	return clientauth.ServiceAccount{}, false
}

// oauthFailure answers 503 for a failure of the key set or the store, as the
// RFC endpoints' clients expect (RFC 7009 section 2.2.1: the token is then assumed
// still valid).
func (s *Server) oauthFailure(w http.ResponseWriter, op string, err error) {
	if errors.Is(err, token.ErrNoKeys) {
		writeOAuthError(w, http.StatusServiceUnavailable, oauthUnavailable, msgNoKeys)
		return
	}
	s.cfg.Logger.Warn(op+" failed: blacklist store unavailable", "err", err)
	writeOAuthError(w, http.StatusServiceUnavailable, oauthUnavailable, msgStoreDown)
}
