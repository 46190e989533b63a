// Package sessions is the server's one revocation seam: it verifies tokens against the
// keys, the revocation store and the verified-token cache, and logs them out.
package sessions
