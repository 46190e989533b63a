package blacklist

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// ClientConfig says how to reach Redis: a single node, Sentinels or a Cluster.
type ClientConfig struct {
	// Addrs are host:port pairs: one for a single node, several for a Cluster, or the
	// Sentinels when MasterName is set.
	Addrs []string
	// MasterName is the Sentinel master name; empty when not using Sentinel.
	MasterName   string
	Username     string
	PasswordFile string
	DB           int
	TLS          bool
	TLSCAFile    string
	TLSServer    string
	// Timeout bounds dialing and each read and write; default 1s.
	Timeout time.Duration
}

// NewClient builds a go-redis UniversalClient from cfg. The password is read from
// PasswordFile once, here; it never appears in flags, environment or logs.
func NewClient(cfg ClientConfig) (redis.UniversalClient, error) {
	if len(cfg.Addrs) == 0 {
		return nil, errors.New("no Redis address given")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = time.Second
	}
	opts := &redis.UniversalOptions{
		Addrs:        cfg.Addrs,
		MasterName:   cfg.MasterName,
		Username:     cfg.Username,
		DB:           cfg.DB,
		DialTimeout:  cfg.Timeout,
		ReadTimeout:  cfg.Timeout,
		WriteTimeout: cfg.Timeout,
		MaxRetries:   1,
	}
	if cfg.PasswordFile != "" {
		data, err := os.ReadFile(cfg.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("reading Redis password file: %w", err)
		}
		opts.Password = strings.TrimRight(string(data), "\r\n")
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
	return redis.NewUniversalClient(opts), nil
}
