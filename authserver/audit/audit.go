package audit

import (
	"context"
	"log/slog"
	"time"
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
	// RefreshReuse is a refresh token presented after its session had moved on: the
	// session is revoked (a stolen refresh token, or a client that kept an old one).
	RefreshReuse Event = "refresh-reuse"
	// IssueRefused is a call of POST /auth/token that was refused: the caller is not
	// authenticated, or not allowed to obtain tokens.
	IssueRefused Event = "issue-refused"
)

// Reasons of an IssueRefused event.
const (
	ReasonUnauthenticated = "unauthenticated"
	ReasonForbidden       = "forbidden"
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
	// Reason says why an issuance was refused.
	Reason string
}

// Log writes r as one info line with message Message and the fields event, user_id,
// session_id, kid, caller, request and reason, whatever level l logs at: the audit
// trail is not a log level, and --log-level warn must not silence it. The line goes
// to l's handler directly (slog's handlers check the level in Logger, not in Handle).
func Log(ctx context.Context, l *slog.Logger, r Record) {
	rec := slog.NewRecord(time.Now(), slog.LevelInfo, Message, 0)
	rec.AddAttrs(slog.String("event", string(r.Event)))
	for _, f := range [...]struct{ key, value string }{
		{"user_id", r.UserID}, {"session_id", r.SessionID}, {"kid", r.KeyID},
		{"caller", r.Caller}, {"request", r.Request}, {"reason", r.Reason},
	} {
		if f.value != "" {
			rec.AddAttrs(slog.String(f.key, f.value))
		}
	}
	_ = l.Handler().Handle(ctx, rec)
}
