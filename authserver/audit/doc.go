// Package audit writes the auth server's audit trail: one structured log line per
// session or key event, with a fixed message and field set (docs/operations.md
// "Audit log") and never a token, stamp or key material.
package audit
