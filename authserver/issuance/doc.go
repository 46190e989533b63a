// Package issuance signs new sessions and rotates their refresh tokens: the issuer
// role's domain, the only code that uses private keys at run time.
package issuance
