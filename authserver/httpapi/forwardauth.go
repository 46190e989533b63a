package httpapi

import (
	"net/http"
	"strings"
)

// verifyPath is the forward-auth check's path; every path below it is the same check.
const verifyPath = "/auth/verify"

// isForwardAuthPath reports whether path is the forward-auth check: /auth/verify itself or
// anything below it. Envoy's HTTP ext_authz appends the original request's path to its
// path_prefix (GET /auth/verify/orders/1), and it, Traefik with preserveRequestMethod and
// nginx's auth_request all keep the original method, so neither the rest of the path nor
// the method can matter to the answer.
func isForwardAuthPath(path string) bool {
	rest, ok := strings.CutPrefix(path, verifyPath)
	return ok && (rest == "" || rest[0] == '/')
}

// routeForwardAuth sends every forward-auth path to verify before the mux sees it: the
// mux would answer a path with "//" or ".." (which a proxy may append as it came) with a
// redirect, which a proxy passes on to its client instead of an answer.
func routeForwardAuth(mux, verify http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isForwardAuthPath(r.URL.Path) {
			verify.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
}
