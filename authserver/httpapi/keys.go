package httpapi

import (
	"net/http"
	"strconv"

	"github.com/hiringo/auth-operator/authserver/keyset"
)

// jwks serves every published key as a JSON Web Key Set (GET /.well-known/jwks.json).
// Clients may cache it for JWKSMaxAge, which the server's configuration keeps short
// enough that a copy cached before a next key reached this pod expires before that
// key may sign.
func (s *Server) jwks(w http.ResponseWriter, r *http.Request) {
	s.serveKeyDocument(w, r, contentTypeJWKSet, (*keyset.Set).JWKS)
}

// publicKey serves the active public key as PEM (GET /auth/public-key), as the
// original did.
func (s *Server) publicKey(w http.ResponseWriter, r *http.Request) {
	s.serveKeyDocument(w, r, contentTypePEM, (*keyset.Set).ActivePEM)
}

// serveKeyDocument answers GET or HEAD with the document of the current key set that
// doc selects, cacheable for JWKSMaxAge; 503 while no set is loaded.
func (s *Server) serveKeyDocument(w http.ResponseWriter, r *http.Request, contentType string, doc func(*keyset.Set) []byte) {
	if !allowMethods(w, r, "GET, HEAD", http.MethodGet, http.MethodHead) {
		return
	}
	set := s.cfg.Keys.Current()
	if set == nil {
		writeError(w, http.StatusServiceUnavailable, msgNoKeys)
		return
	}
	h := w.Header()
	h["Content-Type"] = []string{contentType}
	h[headerCacheControl] = []string{"public, max-age=" + strconv.Itoa(int(s.cfg.JWKSMaxAge.Seconds()))}
	_, _ = w.Write(doc(set))
}
