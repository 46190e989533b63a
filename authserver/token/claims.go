package token

import "github.com/golang-jwt/jwt/v5"

// Claims are the claims of an access token, shaped as the original service issued them.
type Claims struct {
	User User `json:"user"`
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
