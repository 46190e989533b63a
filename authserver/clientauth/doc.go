// Package clientauth authenticates the in-cluster callers of token issuance by their
// projected ServiceAccount tokens, through the Kubernetes TokenReview API, and
// authorizes them against the configured client list.
package clientauth
