package clientauth

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
)

// The API server's ServiceAccount issuer discovery (KEP 1393): its issuer and the public
// keys that sign ServiceAccount tokens, served to every ServiceAccount by the default
// system:service-account-issuer-discovery binding (and by the issuer's ClusterRole).
const (
	discoveryPath = "/.well-known/openid-configuration"
	jwksPath      = "/openid/v1/jwks"
)

// Key set refresh: the keys are read again after keysMaxAge, and on a token whose kid is
// unknown, at most once per keysMinRefresh, so that junk with made-up kids cannot make
// every request a fetch.
const (
	keysMaxAge     = 10 * time.Minute
	keysMinRefresh = 30 * time.Second
)

// ClusterKeys are the issuer and the ServiceAccount token keys of the cluster, read from
// the API server's discovery documents and kept for keysMaxAge.
type ClusterKeys struct {
	// Client is a REST client of the API server (kubernetes.Interface.Discovery().RESTClient()).
	Client rest.Interface
	// Clock is the time source; nil is the real clock.
	Clock clock.PassiveClock

	mu      sync.Mutex
	issuer  string
	keys    jose.JSONWebKeySet
	fetched time.Time
	tried   time.Time
}

// lookup returns the cluster's issuer and the keys that may have signed a token with kid
// ("" for none: every key): the cached ones, read again when they are old or do not know
// kid (at most once per keysMinRefresh).
func (c *ClusterKeys) lookup(ctx context.Context, kid string) (string, []jose.JSONWebKey, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	stale := c.fetched.IsZero() || now.Sub(c.fetched) > keysMaxAge
	unknown := kid != "" && len(c.keys.Key(kid)) == 0
	if (stale || unknown) && now.Sub(c.tried) >= keysMinRefresh {
		c.tried = now
		if err := c.fetch(ctx); err != nil && c.fetched.IsZero() {
			return "", nil, err
		}
	}
	if c.fetched.IsZero() {
		return "", nil, fmt.Errorf("the cluster's ServiceAccount keys are not known yet")
	}
	if kid == "" {
		return c.issuer, c.keys.Keys, nil
	}
	return c.issuer, c.keys.Key(kid), nil
}

func (c *ClusterKeys) fetch(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, reviewTimeout)
	defer cancel()
	raw, err := c.Client.Get().AbsPath(discoveryPath).DoRaw(ctx)
	if err != nil {
		return fmt.Errorf("reading the API server's %s: %w", discoveryPath, err)
	}
	var doc struct {
		Issuer string `json:"issuer"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil || doc.Issuer == "" {
		return fmt.Errorf("the API server's %s names no issuer", discoveryPath)
	}
	raw, err = c.Client.Get().AbsPath(jwksPath).DoRaw(ctx)
	if err != nil {
		return fmt.Errorf("reading the API server's %s: %w", jwksPath, err)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(raw, &set); err != nil || len(set.Keys) == 0 {
		return fmt.Errorf("the API server's %s holds no key", jwksPath)
	}
	c.issuer, c.keys, c.fetched = doc.Issuer, set, c.now()
	return nil
}

func (c *ClusterKeys) now() time.Time {
	if c.Clock == nil {
		return time.Now()
	}
	return c.Clock.Now()
}
