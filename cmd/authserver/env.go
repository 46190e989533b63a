package main

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/hiringo/auth-operator/internal/serverenv"
)

// withServeEnv makes every flag of serve settable from its variable of serverenv.Serve,
// the operator's contract, and refuses to run with an AUTHSERVER_* variable that is not
// one of them: a misspelt or retired setting would otherwise be ignored.
func withServeEnv(cmd *cobra.Command) *cobra.Command {
	return bindEnv(cmd, serverenv.Serve, true)
}

// withEnv makes every flag of a local tool's command settable from its variable
// (serverenv.Var: --keys-dir is AUTHSERVER_KEYS_DIR).
func withEnv(cmd *cobra.Command) *cobra.Command {
	var vars []string
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if f.Name != "help" {
			vars = append(vars, serverenv.Var(f.Name))
		}
	})
	return bindEnv(cmd, vars, false)
}

// bindEnv names each variable of vars in its flag's help and applies the environment
// before the command runs; a flag given on the command line wins. With strict, an
// AUTHSERVER_* variable not in vars is an error. Every variable must name a flag of cmd.
func bindEnv(cmd *cobra.Command, vars []string, strict bool) *cobra.Command {
	for _, v := range vars {
		f := cmd.Flags().Lookup(serverenv.Flag(v))
		if f == nil {
			panic(fmt.Sprintf("%s names no flag of %s", v, cmd.Name()))
		}
		f.Usage = fmt.Sprintf("%s (env %s)", f.Usage, v)
	}
	cmd.PreRunE = func(cmd *cobra.Command, _ []string) error {
		if unknown := serverenv.Unknown(os.Environ(), vars); strict && len(unknown) > 0 {
			return fmt.Errorf("unknown environment variable %s: authserver %s reads only the AUTHSERVER_* variables of docs/authserver-flags.md", strings.Join(unknown, ", "), cmd.Name())
		}
		return applyEnv(cmd.Flags(), vars)
	}
	return cmd
}

func applyEnv(fs *pflag.FlagSet, vars []string) error {
	var firstErr error
	fs.VisitAll(func(f *pflag.Flag) {
		v := serverenv.Var(f.Name)
		if f.Changed || firstErr != nil || !slices.Contains(vars, v) {
			return
		}
		val, ok := os.LookupEnv(v)
		if !ok {
			return
		}
		if err := fs.Set(f.Name, val); err != nil {
			firstErr = fmt.Errorf("invalid value %q for %s: %w", val, v, err)
		}
	})
	return firstErr
}
