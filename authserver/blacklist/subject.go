package blacklist

import (
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"time"
)

// Subject is what the store knows of one verified token: whose it is, its own
// identity and the login session and stamp it belongs to.
type Subject struct {
	// UserID is the token's user.id; never empty (a token naming no user is refused
	// before it reaches the store).
	UserID string
	// TokenID is the token's blacklist id, the same for every encoding of it.
	TokenID string
	// SessionID and Stamp are user.auth.id and user.auth.token; both empty for a
	// token without a session, which is then revoked by TokenID alone.
	SessionID string
	Stamp     string
	// IssuedAt is the token's iat, compared with the user's cutoff.
	IssuedAt time.Time
}

// HasSession reports whether the token belongs to a session (logout then revokes its
// stamp rather than the token alone).
func (s Subject) HasSession() bool { return s.SessionID != "" && s.Stamp != "" }

// Keys are the Redis keys of a subject. All of them carry the user's hash tag, so a
// Redis Cluster keeps one user's keys in one slot and one command reads them all.
type Keys struct {
	// Token is the entry of a logged-out token without a session.
	Token string
	// Stamp and Session are the entries of a logged-out stamp and of a session ended
	// by refresh-token reuse; Record is the session's record (its current stamp).
	// Empty for a token without a session.
	Stamp, Session, Record string
	// Cutoff is the user's cutoff; Only the user's single-session marker.
	Cutoff, Only string
}

// IDs are the names under which revocations are published and the verified-token
// cache indexes its entries: revoking any of them drops every cached token it covers.
type IDs struct {
	Token, Stamp, Session, User string
}

// All lists the ids that are set, token first.
func (i IDs) All() []string {
	out := []string{i.Token, i.User}
	if i.Stamp != "" {
		out = append(out, i.Stamp, i.Session)
	}
	return out
}

// IDsOf names the revocation ids of sub. The token id is the blacklist id itself, as
// published before sessions existed; the others are digests, so no user id, session
// id or stamp appears in Redis or on the channel.
func IDsOf(sub Subject) IDs {
	ids := IDs{Token: sub.TokenID, User: "user:" + digest("user", sub.UserID)}
	if sub.HasSession() {
		ids.Session = "session:" + digest("session", sub.UserID, sub.SessionID)
		ids.Stamp = "stamp:" + digest("stamp", sub.UserID, sub.SessionID, sub.Stamp)
	}
	return ids
}

// keysOf names the Redis keys of sub: "<prefix>{<user digest>}:<kind>[:<digest>]".
func (s *Store) keysOf(_ Subject, ids IDs) Keys {
	tag := s.prefix + "{" + strings.TrimPrefix(ids.User, "user:")[:22] + "}:"
	k := Keys{Token: tag + "bl:" + ids.Token, Cutoff: tag + "cutoff", Only: tag + "only"}
	if ids.Stamp != "" {
		k.Stamp = tag + ids.Stamp
		k.Session = tag + ids.Session
		k.Record = tag + "current:" + digestOf(ids.Session)
	}
	return k
}

// digestOf is the digest part of a revocation id ("stamp:<digest>"), as the session's
// record and the single-session marker hold it; "" for "".
func digestOf(id string) string {
	_, d, _ := strings.Cut(id, ":")
	return d
}

// digest is the base64url SHA-256 of parts, each ended by a NUL so that no two lists
// of parts share a digest.
func digest(parts ...string) string {
	var buf [256]byte
	b := buf[:0]
	for _, p := range parts {
		b = append(b, p...)
		b = append(b, 0)
	}
	sum := sha256.Sum256(b)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
