package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/hiringo/auth-operator/internal/version"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := newRootCommand().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		stop()
		os.Exit(1)
	}
}

// newRootCommand builds the command tree.
func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "authserver",
		Short:         "Auth server: logout onto a Redis blacklist, forward-auth verification and the JWKS",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version.Get().String(),
	}
	root.SetVersionTemplate("authserver {{.Version}}\n")
	keys := &cobra.Command{Use: "keys", Short: "Manage signing keys in the mounted-Secret layout"}
	keys.AddCommand(newKeysGenerateCommand())
	tok := &cobra.Command{Use: "token", Short: "Issue tokens for tests and local runs"}
	tok.AddCommand(newTokenIssueCommand())
	root.AddCommand(newServeCommand(), keys, tok, newRedisTopologyCommand(), newRedisProbeCommand())
	return root
}
