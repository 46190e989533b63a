package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/hiringo/auth-operator/authserver/keyfiles"
	"github.com/hiringo/auth-operator/internal/devkeys"
)

func newKeysGenerateCommand() *cobra.Command {
	var dir string
	var force bool
	cmd := &cobra.Command{
		Use:   "generate",
		Short: "Write a fresh key set (one active and one next key) laid out as the kubelet mounts the key Secret",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" {
				return errors.New("--dir is required")
			}
			if _, err := os.Stat(filepath.Join(dir, keyfiles.ManifestFile)); err == nil && !force {
				return fmt.Errorf("%s already holds a key set; pass --force to replace it", dir)
			}
			set, err := keyfiles.NewSet(time.Now())
			if err != nil {
				return err
			}
			if err := devkeys.WriteMounted(dir, set); err != nil {
				return err
			}
			active, _ := set.Active()
			next, _ := set.Next()
			fmt.Fprintf(cmd.OutOrStdout(), "wrote key set to %s: active %s, next %s\n", dir, active.ID, next.ID)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "directory to write the key files into (created if missing)")
	cmd.Flags().BoolVar(&force, "force", false, "replace an existing key set")
	return withEnv(cmd)
}
