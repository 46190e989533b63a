package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/hiringo/auth-operator/authserver/audit"
	"github.com/hiringo/auth-operator/authserver/blacklist"
	"github.com/hiringo/auth-operator/authserver/clientauth"
	"github.com/hiringo/auth-operator/authserver/issuance"
	"github.com/hiringo/auth-operator/authserver/token"
)

// Messages of the issuer's answers.
const (
	msgUnauthenticated = "caller not authenticated"
	msgForbidden       = "caller may not obtain tokens"
	msgReviewDown      = "token review unavailable"
	msgReuse           = "refresh token reused: session revoked"
	msgRateLimited     = "too many refreshes of this session: retry later"
	msgStoreFull       = "session store full: new logins are refused until Redis has memory again"
)

// Authorizer authenticates and authorizes the caller of /auth/token
// (clientauth.Authenticator).
type Authorizer interface {
	Authorize(ctx context.Context, bearer string) (clientauth.ServiceAccount, error)
}

// issueRequest is the body of POST /auth/token: the user, as the seed's user claim
// names its fields. The session (user.auth) is made by the issuer.
type issueRequest struct {
	ID              *string `json:"id"`
	Name            string  `json:"name"`
	Email           string  `json:"email"`
	EmailVerifiedAt *string `json:"email_verified_at"`
	CreatedAt       string  `json:"created_at"`
	UpdatedAt       string  `json:"updated_at"`
}

// maxUserField bounds every string of the user: tokens stay below --max-token-bytes.
const maxUserField = 512

// loginPayload is the original's login payload.
type loginPayload struct {
	ID              string  `json:"id"`
	Email           string  `json:"email"`
	Name            string  `json:"name"`
	EmailVerifiedAt *string `json:"email_verified_at"`
	Token           string  `json:"token"`
	TokenExpiration int64   `json:"token_expiration"`
	RefreshToken    string  `json:"refresh_token"`
}

// refreshPayload is the original's refresh payload.
type refreshPayload struct {
	Token           string `json:"token"`
	RefreshToken    string `json:"refresh_token"`
	TokenExpiration int64  `json:"token_expiration"`
}

// issue starts a session for the user in the JSON body (POST /auth/token). The caller
// authenticates with its projected ServiceAccount token as Bearer. A form-encoded body
// is an OAuth grant instead (refreshGrant).
func (s *Server) issue(w http.ResponseWriter, r *http.Request) {
	w.Header()[headerCacheControl] = valueNoStore
	if !allowMethods(w, r, "POST", http.MethodPost) {
		return
	}
	if isForm(r) {
		s.refreshGrant(w, r)
		return
	}
	bearer, err := token.FromHeader(r.Header)
	if err != nil {
		audit.Log(r.Context(), s.cfg.Logger, audit.Record{Event: audit.IssueRefused, Reason: audit.ReasonUnauthenticated})
		writeError(w, http.StatusUnauthorized, msgUnauthenticated)
		return
	}
	caller, err := s.cfg.Clients.Authorize(r.Context(), bearer)
	if err != nil {
		switch {
		case errors.Is(err, clientauth.ErrUnauthenticated):
			audit.Log(r.Context(), s.cfg.Logger, audit.Record{Event: audit.IssueRefused, Reason: audit.ReasonUnauthenticated})
			writeError(w, http.StatusUnauthorized, msgUnauthenticated)
		case errors.Is(err, clientauth.ErrForbidden):
			rec := audit.Record{Event: audit.IssueRefused, Reason: audit.ReasonForbidden}
			if caller.Name != "" {
				rec.Caller = caller.String()
			}
			audit.Log(r.Context(), s.cfg.Logger, rec)
			writeError(w, http.StatusForbidden, msgForbidden)
		default:
			s.cfg.Logger.Warn("issuance failed: token review unavailable", "err", err)
			writeError(w, http.StatusServiceUnavailable, msgReviewDown)
		}
		return
	}
	user, err := decodeUser(r.Body)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	pair, err := s.cfg.Issuance.Issue(r.Context(), user, caller.Username())
	if err != nil {
		s.issuanceFailure(w, err)
		return
	}
	u := pair.User
	audit.Log(r.Context(), s.cfg.Logger, audit.Record{
		Event: audit.Issue, UserID: u.ID, SessionID: u.Auth.ID, KeyID: pair.KeyID, Caller: caller.String(),
	})
	writeEnvelope(w, http.StatusOK, true, msgSuccess, loginPayload{
		ID: u.ID, Email: u.Email, Name: u.Name, EmailVerifiedAt: u.EmailVerifiedAt,
		Token: pair.Access, TokenExpiration: pair.AccessExpiresAt.Unix(), RefreshToken: pair.Refresh,
	})
}

// refresh exchanges the refresh token presented as Bearer for a new pair
// (GET or POST /auth/refresh).
func (s *Server) refresh(w http.ResponseWriter, r *http.Request) {
	w.Header()[headerCacheControl] = valueNoStore
	if !allowMethods(w, r, "GET, POST", http.MethodGet, http.MethodPost) {
		return
	}
	raw, err := token.FromHeader(r.Header)
	if err != nil {
		writeError(w, http.StatusUnauthorized, msgMissingToken)
		return
	}
	pair, err := s.rotate(r, raw)
	if err != nil {
		s.issuanceFailure(w, err)
		return
	}
	writeEnvelope(w, http.StatusCreated, true, msgSuccess, refreshPayload{
		Token: pair.Access, RefreshToken: pair.Refresh, TokenExpiration: pair.AccessExpiresAt.Unix(),
	})
}

// rotate exchanges a refresh token for a new pair (both refresh endpoints) and writes the
// audit line: the refresh, or the reuse that ended a session.
func (s *Server) rotate(r *http.Request, raw string) (issuance.Pair, error) {
	pair, err := s.cfg.Issuance.Refresh(r.Context(), raw)
	var reuse *issuance.ReuseError
	switch {
	case errors.As(err, &reuse):
		audit.Log(r.Context(), s.cfg.Logger, audit.Record{
			Event: audit.RefreshReuse, UserID: reuse.UserID, SessionID: reuse.SessionID, KeyID: reuse.KeyID,
		})
	case err == nil:
		audit.Log(r.Context(), s.cfg.Logger, audit.Record{
			Event: audit.Refresh, UserID: pair.User.ID, SessionID: pair.User.Auth.ID, KeyID: pair.KeyID,
		})
	}
	return pair, err
}

func (s *Server) issuanceFailure(w http.ResponseWriter, err error) {
	status, msg := s.issuanceOutcome(w, err)
	writeError(w, status, msg)
}

// issuanceOutcome is the status and message of a failed issuance or refresh; a rate-limited
// refresh also gets Retry-After on w.
func (s *Server) issuanceOutcome(w http.ResponseWriter, err error) (int, string) {
	var limited *blacklist.RateLimitedError
	switch {
	case errors.Is(err, blacklist.ErrReuse):
		return http.StatusUnauthorized, msgReuse
	case errors.As(err, &limited):
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(limited.RetryAfter.Seconds()))))
		return http.StatusTooManyRequests, msgRateLimited
	case errors.Is(err, issuance.ErrNoSigningKey):
		return http.StatusServiceUnavailable, msgNoKeys
	case errors.Is(err, blacklist.ErrStoreFull):
		s.cfg.Logger.Error("issuance refused: the session store's Redis is at its maxmemory (revocations are still stored); give it more memory", "err", err)
		return http.StatusServiceUnavailable, msgStoreFull
	case errors.Is(err, blacklist.ErrRevoked):
		return http.StatusUnauthorized, msgBlacklisted
	default:
		return s.failure("issuance", err, http.StatusUnauthorized)
	}
}

// decodeUser reads the body of POST /auth/token; its error names the field to fix.
func decodeUser(body io.Reader) (token.User, error) {
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	var req issueRequest
	if err := dec.Decode(&req); err != nil {
		var typeErr *json.UnmarshalTypeError
		switch {
		case errors.As(err, &typeErr):
			return token.User{}, fmt.Errorf("invalid body: field %q must be a %s", typeErr.Field, typeErr.Type)
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			return token.User{}, fmt.Errorf("invalid body: unknown field %s (the session is made by the issuer)", strings.TrimPrefix(err.Error(), "json: unknown field "))
		case errors.Is(err, io.EOF):
			return token.User{}, errors.New(`invalid body: a JSON object with the user is required (field "id" at least)`)
		default:
			return token.User{}, fmt.Errorf("invalid body: not a JSON object: %w", err)
		}
	}
	if dec.More() {
		return token.User{}, errors.New("invalid body: one JSON object expected")
	}
	if req.ID == nil || *req.ID == "" {
		return token.User{}, errors.New(`invalid body: field "id" is required`)
	}
	u := token.User{
		ID: *req.ID, Name: req.Name, Email: req.Email, EmailVerifiedAt: req.EmailVerifiedAt,
		CreatedAt: req.CreatedAt, UpdatedAt: req.UpdatedAt,
	}
	for field, v := range map[string]string{"id": u.ID, "name": u.Name, "email": u.Email, "created_at": u.CreatedAt, "updated_at": u.UpdatedAt} {
		if len(v) > maxUserField {
			return token.User{}, fmt.Errorf("invalid body: field %q is longer than %d bytes", field, maxUserField)
		}
	}
	if u.EmailVerifiedAt != nil && len(*u.EmailVerifiedAt) > maxUserField {
		return token.User{}, fmt.Errorf("invalid body: field %q is longer than %d bytes", "email_verified_at", maxUserField)
	}
	return u, nil
}
