package httpapi

import (
	"net/http"
	"strconv"
)

// jwks serves every published key as a JSON Web Key Set (GET /.well-known/jwks.json).
// Clients may cache it for JWKSMaxAge: a key is published a whole rotation interval
// before it signs, so a cached copy always holds the key of any valid token.
func (s *Server) jwks(w http.ResponseWriter, r *http.Request) {
	if !allowMethods(w, r, "GET, HEAD", http.MethodGet, http.MethodHead) {
		return
	}
	set := s.cfg.Keys.Current()
	if set == nil {
		writeError(w, http.StatusServiceUnavailable, msgNoKeys)
		return
	}
	h := w.Header()
	h["Content-Type"] = []string{contentTypeJWKSet}
	h[headerCacheControl] = []string{s.cacheControl()}
	_, _ = w.Write(set.JWKS())
}

// publicKey serves the active public key as PEM (GET /auth/public-key), as the
// original did.
func (s *Server) publicKey(w http.ResponseWriter, r *http.Request) {
	if !allowMethods(w, r, "GET, HEAD", http.MethodGet, http.MethodHead) {
		return
	}
	set := s.cfg.Keys.Current()
	if set == nil {
		writeError(w, http.StatusServiceUnavailable, msgNoKeys)
		return
	}
	h := w.Header()
	h["Content-Type"] = []string{contentTypePEM}
	h[headerCacheControl] = []string{s.cacheControl()}
	_, _ = w.Write(set.ActivePEM())
}

func (s *Server) cacheControl() string {
	return "public, max-age=" + strconv.Itoa(int(s.cfg.JWKSMaxAge.Seconds()))
}
