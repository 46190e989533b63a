package token

import "github.com/golang-jwt/jwt/v5"

// Claims are the claims of a token: the original service's "user" claim, the registered
// claims, and the RFC 9068 claims that standard consumers read. Tokens issued here carry
// sub (= user.id), client_id and sid (= user.auth.id) besides iss, aud, jti, iat and exp;
// a seed-format token carries none of them and still verifies.
type Claims struct {
	User User `json:"user"`
	// ClientID is the RFC 9068 client_id: the ServiceAccount that obtained the token,
	// as system:serviceaccount:NAMESPACE:NAME.
	ClientID string `json:"client_id,omitempty"`
	// SessionID is the OpenID Connect sid: user.auth.id, the login session.
	SessionID string `json:"sid,omitempty"`
	jwt.RegisteredClaims
}

// User is the "user" claim: who the token speaks for and which login session it is.
type User struct {
	ID              string  `json:"id"`
	Name            string  `json:"name"`
	Email           string  `json:"email"`
	EmailVerifiedAt *string `json:"email_verified_at"`
	CreatedAt       string  `json:"created_at"`
	UpdatedAt       string  `json:"updated_at"`
	Auth            Session `json:"auth"`
}

// Session is the "user.auth" claim: the login session the token belongs to.
type Session struct {
	ID    string `json:"id"`
	Token string `json:"token"`
}
