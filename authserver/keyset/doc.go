// Package keyset holds the auth server's published signing keys, loaded from the mounted key Secret and reloaded when it changes.
package keyset
