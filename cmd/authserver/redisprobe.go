package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/hiringo/auth-operator/internal/redistopology"
)

// redisProbeConfig is what `authserver redis-probe` is told.
type redisProbeConfig struct {
	addr, passwordFile, recordFile, electingFile string
	timeout                                      time.Duration
}

// newRedisProbeCommand is the readiness probe of a replicated managed Redis's Redis
// container. It passes when Redis serves (a primary, or a replica linked to its primary),
// and then records on the volume how far its data goes (redistopology.Record), which the
// pods compare to elect a primary after a restart of every pod. While the start gate elects,
// it passes too: the StatefulSet starts its pods one after the other, each once the one
// before is ready, and the election needs them all.
func newRedisProbeCommand() *cobra.Command {
	c := &redisProbeConfig{}
	cmd := &cobra.Command{
		Use:   "redis-probe",
		Short: "Readiness of a replicated managed Redis pod; records its replication offset on its volume",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return runRedisProbe(cmd.Context(), c) },
	}
	f := cmd.Flags()
	f.StringVar(&c.addr, "addr", "127.0.0.1:6379", "the Redis to ask")
	f.StringVar(&c.passwordFile, "password-file", "", "file holding Redis's password (its default user's)")
	f.StringVar(&c.recordFile, "record-file", "", "file on the data volume to record the replication offset in")
	f.StringVar(&c.electingFile, "electing-file", "", "file the start gate holds while it elects the primary")
	f.DurationVar(&c.timeout, "timeout", 2*time.Second, "how long to wait for Redis's answer")
	return cmd
}

func runRedisProbe(ctx context.Context, c *redisProbeConfig) error {
	if c.electingFile != "" {
		if _, err := os.Stat(c.electingFile); err == nil {
			return nil
		}
	}
	password := ""
	if c.passwordFile != "" {
		var err error
		if password, err = readPassword(c.passwordFile); err != nil {
			return err
		}
	}
	client := redis.NewClient(&redis.Options{Addr: c.addr, Password: password, Protocol: 2, DisableIdentity: true,
		DialTimeout: c.timeout, ReadTimeout: c.timeout, WriteTimeout: c.timeout, MaxRetries: -1})
	defer client.Close()
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	info, err := client.Info(ctx, "server", "replication", "persistence").Result()
	if err != nil {
		return fmt.Errorf("asking Redis: %w", err)
	}
	record, serving := redistopology.RecordFromInfo(info)
	if !serving {
		return errors.New("not ready: neither a primary nor a replica linked to its primary")
	}
	if c.recordFile != "" {
		return redistopology.WriteRecord(c.recordFile, record)
	}
	return nil
}
