package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/hiringo/auth-operator/authserver/keyfiles"
	"github.com/hiringo/auth-operator/authserver/token"
)

func newTokenIssueCommand() *cobra.Command {
	var (
		keysDir, userID, email, name, sessionID string
		ttl                                     time.Duration
	)
	cmd := &cobra.Command{
		Use:   "issue",
		Short: "Print a token with seed-shaped claims, signed by the active key of a key set",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if ttl <= 0 {
				return errors.New("--ttl must be positive")
			}
			set, err := keyfiles.ReadDir(keysDir)
			if err != nil {
				return err
			}
			active, ok := set.Active()
			if !ok {
				return errors.New("key set has no active key")
			}
			if userID == "" {
				userID = uuid.NewString()
			}
			if sessionID == "" {
				sessionID = uuid.NewString()
			}
			now := time.Now().UTC()
			stamp := now.Format(time.RFC3339Nano)
			claims := token.NewClaims(token.User{
				ID: userID, Name: name, Email: email, CreatedAt: stamp, UpdatedAt: stamp,
				Auth: token.Session{ID: sessionID, Token: randomHex()},
			}, now, ttl)
			s, err := token.Issue(active, claims)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), s)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&keysDir, "keys-dir", "/etc/authserver/keys", "key set directory (mounted-Secret layout)")
	f.StringVar(&userID, "user-id", "", "user.id claim (a random UUID when empty)")
	f.StringVar(&email, "email", "user@example.com", "user.email claim")
	f.StringVar(&name, "name", "Test User", "user.name claim")
	f.StringVar(&sessionID, "session-id", "", "user.auth.id claim (a random UUID when empty)")
	f.DurationVar(&ttl, "ttl", 15*time.Minute, "token lifetime")
	return withEnv(cmd)
}

// randomHex is a fresh 32-byte session secret in hex, shaped as the seed's user.auth.token.
func randomHex() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
