package audit

import (
	"context"
	"log/slog"
)

// Message is the message of every audit line, so that a log pipeline can select them.
const Message = "audit"

// Event is what happened; the value of the "event" field.
type Event string

// The audited events.
const (
	// Logout ended one session (or one seed token without a session).
	Logout Event = "logout"
	// LogoutAll ended every session of the token's user.
	LogoutAll Event = "logout-all"
	// LogoutUser ended every session of a user on an administrator's request
	// (kubectl authsvc logout-user).
	LogoutUser Event = "logout-user"
	// Issue started a session for a caller ServiceAccount.
	Issue Event = "issue"
	// Refresh replaced a session's stamp.
	Refresh Event = "refresh"
	// Revoke revoked a token on an issuance client's request (RFC 7009): a refresh
	// token's session or an access token's stamp.
	Revoke Event = "revoke"
	// KeyRevoked revoked a signing key on every verifier.
	KeyRevoked Event = "key-revoked"
)

// Record is one audit line. Empty fields are left out of the line.
type Record struct {
	Event Event
	// UserID is the user's id (user.id).
	UserID string
	// SessionID is the login session (user.auth.id), never its stamp.
	SessionID string
	// KeyID is the kid of the key that signed the token, signed the new pair or was revoked.
	KeyID string
	// Caller is the ServiceAccount ("namespace/name") that asked for an issuance, or
	// who asked for a logout-user.
	Caller string
	// Request names the administrative request a logout-user applies.
	Request string
}

// Log writes r as one info line with message Message and the fields event, user_id,
// session_id, kid, caller and request.
func Log(ctx context.Context, l *slog.Logger, r Record) {
	if !l.Enabled(ctx, slog.LevelInfo) {
		return
	}
	attrs := make([]slog.Attr, 0, 6)
	attrs = append(attrs, slog.String("event", string(r.Event)))
	for _, f := range [...]struct{ key, value string }{
		{"user_id", r.UserID}, {"session_id", r.SessionID}, {"kid", r.KeyID},
		{"caller", r.Caller}, {"request", r.Request},
	} {
		if f.value != "" {
			attrs = append(attrs, slog.String(f.key, f.value))
		}
	}
	l.LogAttrs(ctx, slog.LevelInfo, Message, attrs...)
}
