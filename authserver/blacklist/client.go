package blacklist

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Mode is the kind of Redis deployment the client talks to.
type Mode string

const (
	// ModeAuto infers the mode: a master name means Sentinel, several addresses a
	// Cluster, and one address is asked (ResolveMode) whether it is a Cluster node.
	ModeAuto Mode = "auto"
	// ModeStandalone is one Redis node (a primary, or a proxy in front of one).
	ModeStandalone Mode = "standalone"
	// ModeSentinel reaches the primary named MasterName through the Sentinels at Addrs.
	ModeSentinel Mode = "sentinel"
	// ModeCluster is a Redis Cluster; Addrs are seed nodes, one configuration
	// endpoint is enough.
	ModeCluster Mode = "cluster"
)

// ParseMode reads a --redis-mode value.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case ModeAuto, ModeStandalone, ModeSentinel, ModeCluster:
		return m, nil
	case "":
		return ModeAuto, nil
	}
	return "", fmt.Errorf("unknown Redis mode %q: use auto, standalone, sentinel or cluster", s)
}

// ClientConfig says how to reach Redis: a single node, Sentinels or a Cluster.
type ClientConfig struct {
	// Mode is the kind of deployment; empty is ModeAuto.
	Mode Mode
	// Addrs are host:port pairs: one for a single node, the seeds of a Cluster, or the
	// Sentinels when MasterName is set.
	Addrs []string
	// MasterName is the Sentinel master name; empty when not using Sentinel.
	MasterName   string
	Username     string
	PasswordFile string
	// SentinelUsername and SentinelPasswordFile authenticate to the Sentinels
	// themselves, which may have their own ACL user and password.
	SentinelUsername     string
	SentinelPasswordFile string
	DB                   int
	TLS                  bool
	TLSCAFile            string
	TLSServer            string
	// Timeout bounds dialing and each read and write; default 1s.
	Timeout time.Duration
}

// Check rejects a configuration whose mode and addresses contradict each other; the
// messages name the flags.
func (cfg ClientConfig) Check() error {
	if len(cfg.Addrs) == 0 {
		return errors.New("no Redis address given (--redis-addrs)")
	}
	mode, err := ParseMode(string(cfg.Mode))
	if err != nil {
		return fmt.Errorf("--redis-mode: %w", err)
	}
	sentinelAuth := cfg.SentinelUsername != "" || cfg.SentinelPasswordFile != ""
	switch mode {
	case ModeStandalone:
		if len(cfg.Addrs) != 1 || cfg.MasterName != "" {
			return errors.New("--redis-mode standalone takes one --redis-addrs and no --redis-master-name")
		}
	case ModeSentinel:
		if cfg.MasterName == "" {
			return errors.New("--redis-mode sentinel needs --redis-master-name")
		}
	case ModeCluster:
		if cfg.MasterName != "" {
			return errors.New("--redis-mode cluster takes no --redis-master-name")
		}
	}
	if sentinelAuth && cfg.MasterName == "" {
		return errors.New("--redis-sentinel-username and --redis-sentinel-password-file need Sentinel (--redis-master-name)")
	}
	if mode, ok := cfg.Inferred(); ok && mode == ModeCluster && cfg.DB != 0 {
		return errors.New("--redis-db must be 0 for a Redis Cluster")
	}
	return nil
}

// Inferred is the mode cfg names without asking Redis; ok is false for one address
// in auto mode, which only the node can answer.
func (cfg ClientConfig) Inferred() (Mode, bool) {
	switch {
	case cfg.Mode != "" && cfg.Mode != ModeAuto:
		return cfg.Mode, true
	case cfg.MasterName != "":
		return ModeSentinel, true
	case len(cfg.Addrs) > 1:
		return ModeCluster, true
	}
	return ModeAuto, false
}

// ResolveMode is the mode cfg resolves to. Auto with one address asks the node
// (INFO cluster): a Cluster node, such as a managed service's one configuration
// endpoint, gets the Cluster client, which learns every node from it; any other node
// is standalone. An error (the node does not answer) wraps ErrUnavailable: guessing
// standalone for a Cluster endpoint would fail every request that lands on a slot the
// node does not own. A refusal (a wrong password) is returned as it is.
func ResolveMode(ctx context.Context, cfg ClientConfig) (Mode, error) {
	if mode, ok := cfg.Inferred(); ok {
		return mode, nil
	}
	opts, err := cfg.universalOptions()
	if err != nil {
		return "", err
	}
	probe := redis.NewClient(opts.Simple())
	defer probe.Close()
	info, err := probe.Info(ctx, "cluster").Result()
	var reply redis.Error
	switch {
	case errors.As(err, &reply) && !transientReply(reply):
		// A refusal (a wrong password, INFO renamed away) will not change by waiting.
		return "", fmt.Errorf("asking %s whether it is a Redis Cluster node (set --redis-mode to skip): %w", cfg.Addrs[0], err)
	case err != nil:
		return "", fmt.Errorf("%w: asking %s whether it is a Redis Cluster node (set --redis-mode to skip): %w", ErrUnavailable, cfg.Addrs[0], err)
	}
	if clusterEnabled(info) {
		return ModeCluster, nil
	}
	return ModeStandalone, nil
}

// transientReply reports an error reply that a Redis starting up or failing over
// gives for a while.
func transientReply(err redis.Error) bool {
	for _, prefix := range []string{"LOADING", "MASTERDOWN", "TRYAGAIN", "BUSY"} {
		if strings.HasPrefix(err.Error(), prefix) {
			return true
		}
	}
	return false
}

// clusterEnabled reads the cluster_enabled field of an INFO cluster reply.
func clusterEnabled(info string) bool {
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "cluster_enabled:"); ok {
			return v == "1"
		}
	}
	return false
}

// NewClient builds a go-redis client from cfg: Sentinel, Cluster or single node as
// its mode says, auto meaning the mode inferred without asking Redis (use
// ResolveMode first to have one address asked). Passwords are read from their files
// once, here; they never appear in flags, environment or logs.
func NewClient(cfg ClientConfig) (redis.UniversalClient, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	opts, err := cfg.universalOptions()
	if err != nil {
		return nil, err
	}
	mode, ok := cfg.Inferred()
	if !ok {
		mode = ModeStandalone
	}
	switch mode {
	case ModeSentinel:
		return redis.NewFailoverClient(opts.Failover()), nil
	case ModeCluster:
		return redis.NewClusterClient(opts.Cluster()), nil
	}
	return redis.NewClient(opts.Simple()), nil
}

func (cfg ClientConfig) universalOptions() (*redis.UniversalOptions, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = time.Second
	}
	opts := &redis.UniversalOptions{
		Addrs:            cfg.Addrs,
		MasterName:       cfg.MasterName,
		Username:         cfg.Username,
		SentinelUsername: cfg.SentinelUsername,
		DB:               cfg.DB,
		DialTimeout:      cfg.Timeout,
		ReadTimeout:      cfg.Timeout,
		WriteTimeout:     cfg.Timeout,
		MaxRetries:       1,
	}
	var err error
	if opts.Password, err = readSecret(cfg.PasswordFile, "Redis password"); err != nil {
		return nil, err
	}
	if opts.SentinelPassword, err = readSecret(cfg.SentinelPasswordFile, "Sentinel password"); err != nil {
		return nil, err
	}
	if cfg.TLS {
		tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: cfg.TLSServer}
		if cfg.TLSCAFile != "" {
			pem, err := os.ReadFile(cfg.TLSCAFile)
			if err != nil {
				return nil, fmt.Errorf("reading Redis CA file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("Redis CA file %s holds no PEM certificate", cfg.TLSCAFile)
			}
			tc.RootCAs = pool
		}
		opts.TLSConfig = tc
	}
	return opts, nil
}

// readSecret reads a password file without its trailing line break; "" for no file.
func readSecret(path, what string) (string, error) {
	if path == "" {
		return "", nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading %s file: %w", what, err)
	}
	return strings.TrimRight(string(data), "\r\n"), nil
}
