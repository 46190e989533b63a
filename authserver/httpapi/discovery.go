package httpapi

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/hiringo/auth-operator/authserver/token"
)

// discoveryDocument is the OpenID Provider metadata that JWT consumers read (Istio
// RequestAuthentication, Envoy jwt_authn, the Kubernetes API server's structured
// authentication): who issues, where the keys are, which algorithm.
type discoveryDocument struct {
	Issuer          string   `json:"issuer"`
	JWKSURI         string   `json:"jwks_uri"`
	SigningAlgs     []string `json:"id_token_signing_alg_values_supported"`
	ResponseTypes   []string `json:"response_types_supported"`
	SubjectTypes    []string `json:"subject_types_supported"`
	ClaimsSupported []string `json:"claims_supported"`
}

// openIDConfiguration serves the discovery document (GET
// /.well-known/openid-configuration); 404 while no --issuer is set.
func (s *Server) openIDConfiguration(w http.ResponseWriter, r *http.Request) {
	if !allowMethods(w, r, "GET, HEAD", http.MethodGet, http.MethodHead) {
		return
	}
	if s.cfg.Issuer == "" {
		writeError(w, http.StatusNotFound, msgNotFound)
		return
	}
	body, err := json.Marshal(discoveryDocument{
		Issuer:          s.cfg.Issuer,
		JWKSURI:         strings.TrimSuffix(s.cfg.Issuer, "/") + "/.well-known/jwks.json",
		SigningAlgs:     []string{token.Algorithm},
		ResponseTypes:   []string{"id_token"},
		SubjectTypes:    []string{"public"},
		ClaimsSupported: []string{"iss", "aud", "exp", "iat", "nbf", "jti", "user"},
	})
	if err != nil {
		writeError(w, http.StatusInternalServerError, msgInternal)
		return
	}
	h := w.Header()
	h["Content-Type"] = []string{contentTypeJWKSet}
	h[headerCacheControl] = []string{"public, max-age=" + strconv.Itoa(int(s.cfg.JWKSMaxAge.Seconds()))}
	_, _ = w.Write(body)
}
