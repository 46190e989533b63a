package blacklist_test

import (
	"strings"
	"testing"
	"time"

	"github.com/hiringo/auth-operator/authserver/blacklist"
	"github.com/hiringo/auth-operator/internal/testutil/redistest"
	"github.com/hiringo/auth-operator/internal/testutil/storetest"
)

// TestConformance runs the store conformance suite on a real redis-server, each case
// under a key prefix of its own.
func TestConformance(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	client, err := blacklist.NewClient(blacklist.ClientConfig{Addrs: []string{srv.Addr}, Timeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	storetest.Run(t, func(t *testing.T) storetest.Store {
		s := blacklist.NewStore(client, blacklist.StoreOptions{Prefix: strings.ReplaceAll(t.Name(), "/", ":") + ":"})
		t.Cleanup(s.Close)
		return s
	})
}
