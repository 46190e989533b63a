// Package httpapi serves the auth server's HTTP API: logout, forward-auth verification, the JWKS, health and metrics.
package httpapi
