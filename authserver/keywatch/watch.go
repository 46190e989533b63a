package keywatch

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
	"github.com/hiringo/auth-operator/authserver/sessions"
)

// Loader takes a new key set from the Secret's data (keyset.Store).
type Loader interface {
	LoadFiles(files map[string][]byte) error
	RevokeKeys(kids ...string)
}

// Config is what Run needs.
type Config struct {
	Client          kubernetes.Interface
	Namespace, Name string
	Keys            Loader
	// Sessions records revoked kids for every verifier, as long as a token they signed
	// could be valid.
	Sessions *sessions.Service
	// Known are the kids held before the first observation (the mounted Secret), so a
	// revocation made while the issuer was down is still announced.
	Known  []string
	Logger *slog.Logger
}

// retryInterval is the pause between attempts to record a revocation.
const retryInterval = 200 * time.Millisecond

// Run follows the Secret until ctx ends.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	w := &watcher{cfg: cfg, known: map[string]bool{}}
	for _, k := range cfg.Known {
		w.known[k] = true
	}
	secrets := func(f informers.SharedInformerFactory) cache.SharedIndexInformer {
		return f.Core().V1().Secrets().Informer()
	}
	if err := namedwatch.Run(ctx, cfg.Client, cfg.Namespace, cfg.Name, secrets, func(obj any) { w.observe(ctx, obj) }); err != nil {
		return fmt.Errorf("following Secret: %w", err)
	}
	return nil
}

type watcher struct {
	cfg   Config
	known map[string]bool
}

// observe loads one version of the Secret and revokes the kids that left it.
// Handlers of one informer run one at a time.
func (w *watcher) observe(ctx context.Context, obj any) {
	secret, ok := obj.(*corev1.Secret)
	if !ok {
		return
	}
	kids, err := manifestKids(secret.Data[keyfiles.ManifestFile])
	if err != nil {
		w.cfg.Logger.Error("key Secret has no readable manifest; keeping the current keys", "secret", w.cfg.Name, "err", err)
		return
	}
	var gone []string
	for k := range w.known {
		if !kids[k] {
			gone = append(gone, k)
		}
	}
	sort.Strings(gone)
	if len(gone) > 0 {
		w.cfg.Keys.RevokeKeys(gone...)
		for ctx.Err() == nil {
			err := w.cfg.Sessions.RevokeKeys(ctx, gone)
			if err == nil {
				for _, kid := range gone {
					audit.Log(ctx, w.cfg.Logger, audit.Record{Event: audit.KeyRevoked, KeyID: kid})
				}
				break
			}
			w.cfg.Logger.Error("recording revoked signing keys failed; retrying", "kids", gone, "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(retryInterval):
			}
		}
	}
	w.known = kids
	if err := w.cfg.Keys.LoadFiles(secret.Data); err != nil {
		w.cfg.Logger.Error("key Secret does not load; keeping the last good keys", "err", err)
	}
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
