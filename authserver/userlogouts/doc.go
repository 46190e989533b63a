// Package userlogouts is the administrative logout of a user: requests recorded in the
// AuthService's NAME-user-logouts ConfigMap (by kubectl authsvc logout-user, gated by
// RBAC on that ConfigMap), which the issuer applies as the user's cutoff in the
// blacklist, the one that POST /auth/logout/all sets, and marks applied.
package userlogouts
