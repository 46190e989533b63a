package httpapi_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/hiringo/auth-operator/authserver/httpapi"
	"github.com/hiringo/auth-operator/authserver/sessions"
	"github.com/hiringo/auth-operator/authserver/token"
	"github.com/hiringo/auth-operator/internal/roles"
	"github.com/hiringo/auth-operator/internal/testutil/redistest"
	"github.com/hiringo/auth-operator/internal/testutil/tokentest"
)

// TestOpenAPI_MatchesTheHandlers drives the real handlers into every documented
// response, validates each answer (status, headers, body) against docs/openapi.yaml,
// and fails when the document lists a path, method or status that no request reached
// or a handler answers with one the document lacks.
func TestOpenAPI_MatchesTheHandlers(t *testing.T) {
	ctx := context.Background()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile("../../docs/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(ctx); err != nil {
		t.Fatalf("docs/openapi.yaml is not valid OpenAPI: %v", err)
	}
	doc.Servers = nil
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}

	def := newHarness(t, nil)
	cmp := newHarness(t, nil, compat)
	ownRedis := redistest.Start(t, redistest.Options{})
	down := newHarness(t, ownRedis)
	noKeys := noKeysServer(t, def)
	dep := newDeployment(t, false, nil)
	iss := dep.issuer
	issuerDown := newDeployment(t, false, redistest.Start(t, redistest.Options{}))
	downRefresh := issuerDown.issue(t).RefreshToken
	caller := func(*harness) string { return dep.login }
	kc, _ := kube(t)
	intruderToken := serviceAccountToken(t, kc, "login", "intruder", clientAudience)
	intruder := func(*harness) string { return intruderToken }
	everywhere := newHarness(t, nil)
	refreshable := func(h *harness) string { return dep.issue(t).RefreshToken }
	limited := newDeploymentWith(t, nil, nil, []harnessOption{asIssuer(nil, false), withConfig(func(c *roles.Config) { c.RefreshesPerMinute = 1 })})
	refreshedOnce := func(*harness) string {
		next, r := limited.refresh(t, http.MethodPost, limited.issue(t).RefreshToken)
		if r.StatusCode != http.StatusCreated {
			t.Fatalf("the first refresh of a session limited to one a minute: %d %s", r.StatusCode, r.body)
		}
		return next.RefreshToken
	}

	openapi3filter.RegisterBodyDecoder("application/x-pem-file", openapi3filter.PlainBodyDecoder)
	defer openapi3filter.UnregisterBodyDecoder("application/x-pem-file")
	issued := 0
	valid := func(h *harness) string {
		issued++
		return tokentest.Issue(t, h.set, 15*time.Minute+time.Duration(issued)*time.Second)
	}
	loggedOut := func(h *harness) string {
		tok := tokentest.Issue(t, h.set, 14*time.Minute)
		h.do(http.MethodPost, "/auth/logout", tok)
		return tok
	}
	type call struct {
		h      *harness
		method string
		path   string
		bearer func(*harness) string
		status int
		body   string
		// form sends body as application/x-www-form-urlencoded rather than JSON.
		form bool
	}
	gateway := func(*harness) string { return dep.gateway }
	intruderSA := serviceAccountToken(t, kc, "edge", "intruder", clientAudience)
	notListed := func(*harness) string { return intruderSA }
	tokenForm := func(tok string) string { return url.Values{"token": {tok}}.Encode() }
	grantForm := func() string {
		return url.Values{"grant_type": {"refresh_token"}, "refresh_token": {dep.issue(t).RefreshToken}}.Encode()
	}
	liveAccess := dep.issue(t).Token
	downAccess := issuerDown.issue(t).Token
	calls := []call{
		{iss, "POST", "/auth/token", caller, 200, userBody, false},
		{iss, "POST", "/auth/token", caller, 400, `{"id":""}`, false},
		{iss, "POST", "/auth/token", nil, 401, userBody, false},
		{iss, "POST", "/auth/token", intruder, 403, userBody, false},
		{iss, "POST", "/auth/token", valid, 401, userBody, false},
		{iss, "GET", "/auth/token", caller, 405, "", false},
		{h: iss, method: "POST", path: "/auth/token", status: 200, body: grantForm(), form: true},
		{h: iss, method: "POST", path: "/auth/token", status: 400, body: "grant_type=refresh_token&refresh_token=x", form: true},
		{h: iss, method: "POST", path: "/auth/revoke", bearer: caller, status: 200, body: tokenForm(liveAccess), form: true},
		{h: iss, method: "POST", path: "/auth/revoke", bearer: caller, status: 400, body: "token_type_hint=x", form: true},
		{h: iss, method: "POST", path: "/auth/revoke", status: 401, body: tokenForm(liveAccess), form: true},
		{h: iss, method: "POST", path: "/auth/revoke", bearer: intruder, status: 403, body: tokenForm(liveAccess), form: true},
		{iss, "GET", "/auth/revoke", caller, 405, "", false},
		{h: dep.verifier, method: "POST", path: "/auth/introspect", bearer: gateway, status: 200, body: tokenForm(dep.issue(t).Token), form: true},
		{h: dep.verifier, method: "POST", path: "/auth/introspect", bearer: gateway, status: 200, body: tokenForm(liveAccess), form: true},
		{h: dep.verifier, method: "POST", path: "/auth/introspect", bearer: gateway, status: 400, body: "", form: true},
		{h: dep.verifier, method: "POST", path: "/auth/introspect", status: 401, body: tokenForm(liveAccess), form: true},
		{h: dep.verifier, method: "POST", path: "/auth/introspect", bearer: notListed, status: 403, body: tokenForm(liveAccess), form: true},
		{dep.verifier, "GET", "/auth/introspect", gateway, 405, "", false},
		{iss, "GET", "/auth/refresh", refreshable, 201, "", false},
		{iss, "POST", "/auth/refresh", refreshable, 201, "", false},
		{iss, "GET", "/auth/refresh", valid, 401, "", false},
		{iss, "POST", "/auth/refresh", nil, 401, "", false},
		{iss, "PUT", "/auth/refresh", nil, 405, "", false},
		{limited.issuer, "GET", "/auth/refresh", refreshedOnce, 429, "", false},
		{limited.issuer, "POST", "/auth/refresh", refreshedOnce, 429, "", false},
		{everywhere, "POST", "/auth/logout/all", valid, 200, "", false},
		{everywhere, "POST", "/auth/logout/all", nil, 401, "", false},
		{everywhere, "GET", "/auth/logout/all", nil, 405, "", false},
		{def, "GET", "/.well-known/openid-configuration", nil, 200, "", false},
		{def, "GET", "/.well-known/oauth-authorization-server", nil, 200, "", false},
		{def, "POST", "/auth/logout", valid, 200, "", false},
		{def, "POST", "/auth/logout", nil, 401, "", false},
		{def, "POST", "/auth/logout", loggedOut, 401, "", false},
		{cmp, "POST", "/auth/logout", nil, 400, "", false},
		{cmp, "POST", "/auth/logout", loggedOut, 500, "", false},
		{def, "PUT", "/auth/logout", nil, 405, "", false},
		{noKeys, "POST", "/auth/logout", valid, 503, "", false},
		{def, "GET", "/auth/verify", valid, 200, "", false},
		{def, "HEAD", "/auth/verify", valid, 200, "", false},
		{def, "POST", "/auth/verify", valid, 200, "", false},
		{def, "GET", "/auth/verify", nil, 401, "", false},
		{def, "HEAD", "/auth/verify", loggedOut, 401, "", false},
		{def, "POST", "/auth/verify", loggedOut, 401, "", false},
		{def, "OPTIONS", "/auth/verify", nil, 401, "", false},
		{def, "GET", "/auth/verify/orders", valid, 200, "", false},
		{def, "GET", "/auth/verify/orders", nil, 401, "", false},
		{noKeys, "GET", "/auth/verify/orders", valid, 503, "", false},
		{noKeys, "GET", "/auth/verify", valid, 503, "", false},
		{noKeys, "HEAD", "/auth/verify", valid, 503, "", false},
		{noKeys, "POST", "/auth/verify", valid, 503, "", false},
		{def, "GET", "/.well-known/jwks.json", nil, 200, "", false},
		{noKeys, "GET", "/.well-known/jwks.json", nil, 503, "", false},
		{def, "GET", "/auth/public-key", nil, 200, "", false},
		{noKeys, "GET", "/auth/public-key", nil, 503, "", false},
		{def, "GET", "/healthz", nil, 200, "", false},
		{def, "GET", "/readyz", nil, 200, "", false},
		{noKeys, "GET", "/readyz", nil, 503, "", false},
		{def, "GET", "/metrics", nil, 200, "", false},
		{down, "GET", "/readyz", nil, 200, "", false},
		{down, "GET", "/.well-known/jwks.json", nil, 200, "", false},
		{down, "POST", "/auth/logout", valid, 503, "", false},
		{down, "GET", "/auth/verify", valid, 503, "", false},
		{down, "POST", "/auth/logout/all", valid, 503, "", false},
		{issuerDown.issuer, "POST", "/auth/token", func(*harness) string { return issuerDown.login }, 503, userBody, false},
		{issuerDown.issuer, "GET", "/auth/refresh", func(*harness) string { return downRefresh }, 503, "", false},
		{h: issuerDown.issuer, method: "POST", path: "/auth/token", status: 503, body: url.Values{"grant_type": {"refresh_token"}, "refresh_token": {downRefresh}}.Encode(), form: true},
		{h: issuerDown.issuer, method: "POST", path: "/auth/revoke", bearer: func(*harness) string { return issuerDown.login }, status: 503, body: tokenForm(downAccess), form: true},
		{h: issuerDown.verifier, method: "POST", path: "/auth/introspect", bearer: func(*harness) string { return issuerDown.gateway }, status: 503, body: tokenForm(downAccess), form: true},
	}
	reached := map[string]bool{}
	for i, c := range calls {
		if c.h == down && i > 0 && calls[i-1].h != down {
			ownRedis.Kill()
		}
		bearer := ""
		if c.bearer != nil {
			bearer = c.bearer(c.h)
		}
		if c.h == issuerDown.issuer && calls[i-1].h != issuerDown.issuer {
			issuerDown.issuer.redis.Kill()
		}
		var r response
		switch {
		case c.form:
			r = c.h.doRaw(c.method, c.path, bearer, "application/x-www-form-urlencoded", c.body)
		case c.body != "":
			r = c.h.doBody(c.method, c.path, bearer, c.body)
		case adminPaths[c.path]:
			r = c.h.doAt(c.h.adminSrv.URL, c.method, c.path, bearer)
		default:
			r = c.h.do(c.method, c.path, bearer)
		}
		name := fmt.Sprintf("%s %s -> %d", c.method, c.path, c.status)
		if r.StatusCode != c.status {
			t.Errorf("%s: got %d %s", name, r.StatusCode, r.body)
			continue
		}
		method := c.method
		if c.status == http.StatusMethodNotAllowed {
			// A refused method has no operation of its own: its answer is documented
			// under the first method the Allow header names.
			method = strings.TrimSpace(strings.Split(r.Header.Get("Allow"), ",")[0])
		}
		if route := validateResponse(t, name, router, method, c.path, r); route != "" {
			reached[opKey(route, method, c.status)] = true
		}
	}
	for _, want := range documented(doc) {
		if !reached[want] {
			t.Errorf("documented %s was not reached by any request", want)
		}
	}
}

// adminPaths are the documented paths served on the admin port (--admin-listen).
var adminPaths = map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true}

func opKey(path, method string, status int) string {
	return strings.ToUpper(method) + " " + path + " " + strconv.Itoa(status)
}

// documented lists every path, method and status of the document.
func documented(doc *openapi3.T) []string {
	var out []string
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			for code := range op.Responses.Map() {
				n, _ := strconv.Atoi(code)
				out = append(out, opKey(path, method, n))
			}
		}
	}
	sort.Strings(out)
	return out
}

// validateResponse checks r against the document and returns the documented path that
// matched (a template such as /auth/verify/{path}), "" when none did.
func validateResponse(t *testing.T, name string, router routers.Router, method, path string, r response) string {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	route, params, err := router.FindRoute(req)
	if err != nil {
		t.Errorf("%s: not in docs/openapi.yaml: %v", name, err)
		return ""
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{
			Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc},
		},
		Status:  r.StatusCode,
		Header:  r.Header,
		Body:    io.NopCloser(bytes.NewReader([]byte(r.body))),
		Options: &openapi3filter.Options{IncludeResponseStatus: true, ExcludeResponseBody: method == http.MethodHead},
	}
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		t.Errorf("%s: response does not match docs/openapi.yaml: %v\nbody: %s", name, err, r.body)
	}
	return route.Path
}

// noKeysServer is an API with no key set loaded, sharing h's blacklist.
func noKeysServer(t *testing.T, h *harness) *harness {
	t.Helper()
	api, err := httpapi.New(httpapi.Config{
		Keys: tokentest.StaticKeys{},
		Sessions: sessions.New(sessions.Config{
			Verifier: token.NewVerifier(tokentest.StaticKeys{}, token.VerifierOptions{}),
			Store:    h.bl,
		}),
		Store: h.bl,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	admin := httptest.NewServer(api.Admin())
	t.Cleanup(admin.Close)
	out := *h
	out.srv = endpoint{srv.URL}
	out.adminSrv = endpoint{admin.URL}
	return &out
}
