// Package install verifies the install paths (the Helm chart, config/ and dist/install.yaml)
// with the real tools against a real API server.
package install
