package httpapi_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hiringo/auth-operator/authserver/blacklist"
	"github.com/hiringo/auth-operator/authserver/httpapi"
	"github.com/hiringo/auth-operator/authserver/issuance"
	"github.com/hiringo/auth-operator/authserver/token"
	"github.com/hiringo/auth-operator/authserver/verifycache"
	"github.com/hiringo/auth-operator/internal/testutil/tokentest"
)

// answering is an in-memory sessions and issuance service that answers every call
// with err: the handlers' mapping from results to status codes, without Redis.
type answering struct{ err error }

func (a answering) Verify(context.Context, string) (verifycache.Principal, error) {
	return verifycache.Principal{UserID: "u"}, a.err
}
func (a answering) Logout(context.Context, string) (token.Verified, error) {
	return token.Verified{}, a.err
}
func (a answering) LogoutAll(context.Context, string) (token.Verified, error) {
	return token.Verified{}, a.err
}
func (a answering) Revoke(context.Context, string, bool, string) (token.Verified, bool, error) {
	return token.Verified{}, a.err == nil, a.err
}
func (a answering) Issue(context.Context, token.User, string) (issuance.Pair, error) {
	return issuance.Pair{}, a.err
}
func (a answering) Refresh(context.Context, string) (issuance.Pair, error) {
	return issuance.Pair{}, a.err
}

// TestHandlers_MapEveryResultToItsStatus: each outcome of the services becomes one
// status and message, the same on every route that can meet it, in both status-code
// modes.
func TestHandlers_MapEveryResultToItsStatus(t *testing.T) {
	unavailable := fmt.Errorf("%w: dial tcp: refused", blacklist.ErrUnavailable)
	for _, tc := range []struct {
		err          error
		status       int
		compatLogout int
		msg          string
	}{
		{nil, 200, 200, "Success"},
		{&token.InvalidError{Cause: "token is expired"}, 401, 401, "invalid or expired jwt, internal=token is expired"},
		{token.ErrNoKeys, 503, 503, "signing keys not loaded"},
		{blacklist.ErrRevoked, 401, 500, "token is blacklisted"},
		{unavailable, 503, 503, "blacklist store unavailable"},
	} {
		for _, compat := range []bool{false, true} {
			svc := answering{err: tc.err}
			api, err := httpapi.New(httpapi.Config{Keys: tokentest.StaticKeys{}, Sessions: svc, CompatStatusCodes: compat})
			if err != nil {
				t.Fatal(err)
			}
			for _, route := range []string{"/auth/verify", "/auth/logout", "/auth/logout/all"} {
				want := tc.status
				if compat && route != "/auth/verify" {
					want = tc.compatLogout
				}
				req := httptest.NewRequest(http.MethodPost, route, nil)
				req.Header.Set("Authorization", "Bearer x")
				rec := httptest.NewRecorder()
				api.ServeHTTP(rec, req)
				if rec.Code != want || (tc.err != nil && rec.Body.String() != errorBody(tc.msg)) {
					t.Errorf("%v (compat %v) on %s: %d %s, want %d %s", tc.err, compat, route, rec.Code, rec.Body, want, tc.msg)
				}
			}
		}
	}
	for _, tc := range []struct {
		err    error
		status int
		msg    string
	}{
		{blacklist.ErrReuse, 401, "refresh token reused: session revoked"},
		{blacklist.ErrRevoked, 401, "token is blacklisted"},
		{issuance.ErrNoSigningKey, 503, "signing keys not loaded"},
		{&token.InvalidError{Cause: "token is not a refresh token"}, 401, "invalid or expired jwt, internal=token is not a refresh token"},
		{unavailable, 503, "blacklist store unavailable"},
		{errors.Join(unavailable), 503, "blacklist store unavailable"},
	} {
		api, err := httpapi.New(httpapi.Config{Role: httpapi.RoleIssuer, Keys: tokentest.StaticKeys{}, Issuance: answering{err: tc.err}})
		if err != nil {
			t.Fatal(err)
		}
		req := httptest.NewRequest(http.MethodGet, "/auth/refresh", nil)
		req.Header.Set("Authorization", "Bearer x")
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, req)
		if rec.Code != tc.status || rec.Body.String() != errorBody(tc.msg) {
			t.Errorf("refresh, %v: %d %s, want %d %s", tc.err, rec.Code, rec.Body, tc.status, tc.msg)
		}
		// The token endpoint's refresh_token grant says the same in RFC 6749's terms: a
		// refresh token that cannot be exchanged is invalid_grant (400), the rest 503.
		req = httptest.NewRequest(http.MethodPost, "/auth/token", strings.NewReader("grant_type=refresh_token&refresh_token=x"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec = httptest.NewRecorder()
		api.ServeHTTP(rec, req)
		wantStatus, wantCode := http.StatusBadRequest, "invalid_grant"
		if tc.status == http.StatusServiceUnavailable {
			wantStatus, wantCode = http.StatusServiceUnavailable, "temporarily_unavailable"
		}
		want := `{"error":"` + wantCode + `","error_description":"` + tc.msg + `"}`
		if rec.Code != wantStatus || rec.Body.String() != want || rec.Header().Get("Cache-Control") != "no-store" {
			t.Errorf("refresh_token grant, %v: %d %s, want %d %s", tc.err, rec.Code, rec.Body, wantStatus, want)
		}
	}
}
