// Package serverenv declares the AUTHSERVER_* environment variables of `authserver serve`:
// the contract between the operator, which sets them on the auth server's pods, and the
// server, which reads them and refuses any other.
package serverenv
