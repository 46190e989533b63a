package httpapi

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/hiringo/auth-operator/authserver/token"
)

// discoveryDocument is the authorization server's metadata (OpenID Connect Discovery
// 1.0 and RFC 8414), listing exactly what the endpoints do. JWT consumers read issuer
// and jwks_uri (Istio RequestAuthentication, Envoy jwt_authn, the Kubernetes API
// server's structured authentication, go-oidc, oauth2-proxy); OAuth libraries read the
// token, revocation and introspection endpoints. There is no authorization endpoint:
// no response type is supported, and the one grant is refresh_token.
type discoveryDocument struct {
	Issuer                   string   `json:"issuer"`
	JWKSURI                  string   `json:"jwks_uri"`
	TokenEndpoint            string   `json:"token_endpoint,omitempty"`
	RevocationEndpoint       string   `json:"revocation_endpoint,omitempty"`
	IntrospectionEndpoint    string   `json:"introspection_endpoint"`
	ResponseTypes            []string `json:"response_types_supported"`
	SubjectTypes             []string `json:"subject_types_supported"`
	SigningAlgs              []string `json:"id_token_signing_alg_values_supported"`
	GrantTypes               []string `json:"grant_types_supported"`
	TokenAuthMethods         []string `json:"token_endpoint_auth_methods_supported,omitempty"`
	RevocationAuthMethods    []string `json:"revocation_endpoint_auth_methods_supported,omitempty"`
	IntrospectionAuthMethods []string `json:"introspection_endpoint_auth_methods_supported"`
	ClaimsSupported          []string `json:"claims_supported"`
}

// ServiceAccountClientAuth names, in the discovery document, how the callers of
// introspection and revocation authenticate: a projected Kubernetes ServiceAccount
// token as Bearer, reviewed by the API server. No registered OAuth client
// authentication method says that; RFC 7591 section 2 lets an absolute URI name one.
const ServiceAccountClientAuth = "https://auth.hiringo.tech/oauth/client-auth/kubernetes-service-account-token"

// Paths of the endpoints the discovery document names.
const (
	pathJWKS       = "/.well-known/jwks.json"
	pathToken      = "/auth/token"
	pathRevoke     = "/auth/revoke"
	pathIntrospect = "/auth/introspect"
)

// discovery is the document of cfg; nil without an issuer.
func discovery(cfg Config) *discoveryDocument {
	if cfg.Issuer == "" {
		return nil
	}
	base := strings.TrimSuffix(cfg.Issuer, "/")
	d := &discoveryDocument{
		Issuer:                   cfg.Issuer,
		JWKSURI:                  base + pathJWKS,
		IntrospectionEndpoint:    base + pathIntrospect,
		ResponseTypes:            []string{},
		SubjectTypes:             []string{"public"},
		SigningAlgs:              []string{token.Algorithm},
		GrantTypes:               []string{},
		IntrospectionAuthMethods: []string{ServiceAccountClientAuth},
		ClaimsSupported:          []string{"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "client_id", "sid", "user"},
	}
	if cfg.TokenServiceURL != "" {
		issuer := strings.TrimSuffix(cfg.TokenServiceURL, "/")
		d.TokenEndpoint = issuer + pathToken
		d.RevocationEndpoint = issuer + pathRevoke
		d.GrantTypes = []string{"refresh_token"}
		// The refresh_token grant is for public clients: the refresh token is the
		// credential. Revocation takes the issuance clients' ServiceAccount tokens.
		d.TokenAuthMethods = []string{"none"}
		d.RevocationAuthMethods = []string{ServiceAccountClientAuth}
	}
	return d
}

// openIDConfiguration serves the discovery document (GET
// /.well-known/openid-configuration and /.well-known/oauth-authorization-server, RFC
// 8414's name for it); 404 while no --issuer is set.
func (s *Server) openIDConfiguration(w http.ResponseWriter, r *http.Request) {
	if !allowMethods(w, r, "GET, HEAD", http.MethodGet, http.MethodHead) {
		return
	}
	if s.discovery == nil {
		writeError(w, http.StatusNotFound, msgNotFound)
		return
	}
	h := w.Header()
	h["Content-Type"] = []string{contentTypeJWKSet}
	h[headerCacheControl] = []string{"public, max-age=" + strconv.Itoa(int(s.cfg.JWKSMaxAge.Seconds()))}
	_, _ = w.Write(s.discovery)
}
