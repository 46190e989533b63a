package keyset

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/hiringo/auth-operator/authserver/audit"
	"github.com/hiringo/auth-operator/authserver/keyfiles"
	"github.com/hiringo/auth-operator/authserver/namedwatch"
)

// KeyRevocations records revoked kids for every verifier (sessions.Service).
type KeyRevocations interface {
	RevokeKeys(ctx context.Context, kids []string) error
}

// SecretConfig names the private key Secret that FollowSecret reads through the API.
type SecretConfig struct {
	Client          kubernetes.Interface
	Namespace, Name string
	// Revocations records each kid that leaves the Secret, so that every verifier
	// refuses it within a second instead of after the kubelet's volume sync.
	Revocations KeyRevocations
	Logger      *slog.Logger
}

// retryInterval is the pause between attempts to record a revocation.
const retryInterval = 200 * time.Millisecond

// FollowSecret is Run for the issuer: it follows the key Secret through the Kubernetes
// API until ctx ends, loading every change at once and revoking each kid that leaves it,
// those held before the first observation (the mounted Secret) included, so that a
// revocation made while the issuer was down is still announced.
func (s *Store) FollowSecret(ctx context.Context, cfg SecretConfig) error {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	known := map[string]bool{}
	if set := s.Current(); set != nil {
		for _, k := range set.Keys() {
			known[k.ID] = true
		}
	}
	secrets := func(f informers.SharedInformerFactory) cache.SharedIndexInformer {
		return f.Core().V1().Secrets().Informer()
	}
	observe := func(obj any) { known = s.observeSecret(ctx, cfg, known, obj) }
	if err := namedwatch.Run(ctx, cfg.Client, cfg.Namespace, cfg.Name, secrets, observe); err != nil {
		return fmt.Errorf("following Secret: %w", err)
	}
	return nil
}

// observeSecret loads one version of the Secret and revokes the kids of known that left
// it; it returns the kids the Secret holds. Handlers of one informer run one at a time.
func (s *Store) observeSecret(ctx context.Context, cfg SecretConfig, known map[string]bool, obj any) map[string]bool {
	secret, ok := obj.(*corev1.Secret)
	if !ok {
		return known
	}
	kids, err := manifestKids(secret.Data[keyfiles.ManifestFile])
	if err != nil {
		cfg.Logger.Error("key Secret has no readable manifest; keeping the current keys", "secret", cfg.Name, "err", err)
		return known
	}
	var gone []string
	for k := range known {
		if !kids[k] {
			gone = append(gone, k)
		}
	}
	sort.Strings(gone)
	if len(gone) > 0 {
		s.RevokeKeys(gone...)
		for ctx.Err() == nil {
			err := cfg.Revocations.RevokeKeys(ctx, gone)
			if err == nil {
				for _, kid := range gone {
					audit.Log(ctx, cfg.Logger, audit.Record{Event: audit.KeyRevoked, KeyID: kid})
				}
				break
			}
			cfg.Logger.Error("recording revoked signing keys failed; retrying", "kids", gone, "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(retryInterval):
			}
		}
	}
	if err := s.LoadFiles(secret.Data); err != nil {
		cfg.Logger.Error("key Secret does not load; keeping the last good keys", "err", err)
	}
	return kids
}

// manifestKids lists the kids of a keyset.json.
func manifestKids(raw []byte) (map[string]bool, error) {
	if raw == nil {
		return nil, keyfiles.ErrNoManifest
	}
	var m keyfiles.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("parsing %s: %w", keyfiles.ManifestFile, err)
	}
	out := make(map[string]bool, len(m.Keys))
	for _, k := range m.Keys {
		out[k.ID] = true
	}
	return out, nil
}
