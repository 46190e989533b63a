// Package token parses and verifies the auth server's ES256 access tokens and derives the blacklist id of each.
package token
