package blacklist_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hiringo/auth-operator/authserver/blacklist"
	"github.com/hiringo/auth-operator/internal/testutil/loopback"
	"github.com/hiringo/auth-operator/internal/testutil/redistest"
)

// TestResolveMode_AsksOneAddressWhetherItIsACluster: in auto mode one address is a
// single node unless the node says it is a Cluster node, which gets the Cluster
// client (a managed service's configuration endpoint); a master name or several
// addresses, and a named mode, are decided without asking.
func TestResolveMode_AsksOneAddressWhetherItIsACluster(t *testing.T) {
	single := redistest.Start(t, redistest.Options{})
	cluster := redistest.Start(t, redistest.Options{Cluster: true})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cases := []struct {
		name string
		cfg  blacklist.ClientConfig
		want blacklist.Mode
	}{
		{"one single node", blacklist.ClientConfig{Addrs: []string{single.Addr}}, blacklist.ModeStandalone},
		{"one cluster endpoint", blacklist.ClientConfig{Addrs: []string{cluster.Addr}}, blacklist.ModeCluster},
		{"several addresses", blacklist.ClientConfig{Addrs: []string{"127.0.0.1:1", "127.0.0.1:2"}}, blacklist.ModeCluster},
		{"a master name", blacklist.ClientConfig{Addrs: []string{"127.0.0.1:1"}, MasterName: "m"}, blacklist.ModeSentinel},
		{"named standalone on a cluster node", blacklist.ClientConfig{Mode: blacklist.ModeStandalone, Addrs: []string{cluster.Addr}}, blacklist.ModeStandalone},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := blacklist.ResolveMode(ctx, tc.cfg)
			if err != nil || got != tc.want {
				t.Fatalf("ResolveMode = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// TestResolveMode_RefusalIsNotUnavailable: a node that refuses the question (a wrong
// password) is not waited for: the error is its answer, not ErrUnavailable.
func TestResolveMode_RefusalIsNotUnavailable(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{Password: "right"})
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("wrong"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := blacklist.ResolveMode(ctx, blacklist.ClientConfig{Addrs: []string{srv.Addr}, PasswordFile: pw})
	if err == nil || errors.Is(err, blacklist.ErrUnavailable) || !strings.Contains(err.Error(), "WRONGPASS") {
		t.Fatalf("ResolveMode with a wrong password: %v, want Redis's WRONGPASS and not ErrUnavailable", err)
	}
}

// TestResolveMode_NodeDownIsUnavailable: a node that does not answer leaves the mode
// unknown rather than guessed.
func TestResolveMode_NodeDownIsUnavailable(t *testing.T) {
	addr := loopback.FreeAddr(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := blacklist.ResolveMode(ctx, blacklist.ClientConfig{Addrs: []string{addr}, Timeout: 200 * time.Millisecond})
	if !errors.Is(err, blacklist.ErrUnavailable) {
		t.Fatalf("ResolveMode of a closed port: %v, want ErrUnavailable", err)
	}
}
