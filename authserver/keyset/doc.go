// Package keyset is the auth server's one key source: the Set of published signing keys
// (and, for the issuer, the signing key), loaded from the mounted key Secret and reloaded
// when it changes (Store.Run), or followed through the Kubernetes API with revocation of
// every kid that leaves it (Store.FollowSecret, the issuer).
package keyset
