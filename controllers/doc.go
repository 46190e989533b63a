// Package controllers implements the AuthService controller: it turns an AuthService into its
// signing keys, JWKS, Redis and auth-server objects and keeps them as the spec says.
package controllers
