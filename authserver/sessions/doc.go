// Package sessions is the server's one revocation service: it verifies tokens against
// the keys, the revocation store and the verified-token cache, and makes every
// revocation write with its expiry rule: logout, logout everywhere, RFC 7009
// revocation, a user's administrative logout, a signing key's revocation, and the
// sessions issuance starts and rotates.
package sessions
