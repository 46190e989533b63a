// Package tlstest makes certificate authorities and serving certificates for tests that
// serve or consume TLS: a self-signed CA, and leaf certificates it signs for loopback
// addresses and names, PEM-encoded as a kubernetes.io/tls Secret holds them.
package tlstest
