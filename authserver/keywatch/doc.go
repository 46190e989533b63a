// Package keywatch follows the private key Secret through the Kubernetes API for the
// issuer: it loads every change at once and revokes, through Redis, each kid that
// leaves the Secret, so every verifier refuses it within a second instead of after
// the kubelet's volume sync.
package keywatch
