package keyset

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/hiringo/auth-operator/authserver/keydomain"
	"github.com/hiringo/auth-operator/authserver/keyfiles"
)

// Options tune a Store.
type Options struct {
	// Debounce is how long the watcher waits after the last file event before it
	// reloads, so that one Secret update is read once. Default 100ms.
	Debounce time.Duration
	// Resync is how often the directory is re-read even without events, as a safety
	// net for missed notifications. Default 1m.
	Resync time.Duration
	// Private loads the private key Secret for signing (the issuer). Without it the
	// store reads public material only and never opens a "*.key.pem" file (a
	// verifier).
	Private bool
}

// Store holds the current Set and replaces it when the keys directory changes.
// A load that fails keeps the last good set.
type Store struct {
	dir     string
	opts    Options
	log     *slog.Logger
	metrics *metrics
	current atomic.Pointer[Set]

	mu        sync.Mutex
	listeners []func(*Set)
	// loaded is the last good set as read, before revoked keys are taken out.
	loaded *Set
	// revoked are kids revoked through Redis: they are out of Current at once, before
	// the mounted files (synced by the kubelet a minute or two later) drop them.
	revoked map[string]bool
}

// NewStore makes a store for the keys directory dir. It holds no set until Load
// succeeds. reg may be nil.
func NewStore(dir string, log *slog.Logger, reg prometheus.Registerer, opts Options) *Store {
	if opts.Debounce <= 0 {
		opts.Debounce = 100 * time.Millisecond
	}
	if opts.Resync <= 0 {
		opts.Resync = time.Minute
	}
	return &Store{dir: dir, opts: opts, log: log, metrics: newMetrics(reg)}
}

// Current returns the last good set, or nil when none has loaded yet.
func (s *Store) Current() *Set { return s.current.Load() }

// OnChange registers f to be called with every new set after it is swapped in.
func (s *Store) OnChange(f func(*Set)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.listeners = append(s.listeners, f)
}

// Load reads the keys directory and swaps in its set when it is valid and differs
// from the current one. On error the current set stays and the failure is counted.
func (s *Store) Load() error {
	set, err := readSet(s.dir, s.opts.Private)
	if err != nil {
		s.metrics.reloads.WithLabelValues("error").Inc()
		return err
	}
	s.swap(set)
	return nil
}

// LoadFiles swaps in the set of files laid out as the key Secret's data (the issuer
// reads its Secret through the API this way). On error the current set stays.
func (s *Store) LoadFiles(files map[string][]byte) error {
	set, err := setOf(files, s.opts.Private)
	if err != nil {
		s.metrics.reloads.WithLabelValues("error").Inc()
		return fmt.Errorf("loading keys from the Secret: %w", err)
	}
	s.swap(set)
	return nil
}

// RevokeKeys takes kids out of the current set at once and keeps them out of every
// later load.
func (s *Store) RevokeKeys(kids ...string) {
	s.mu.Lock()
	changed := false
	for _, kid := range kids {
		if !s.revoked[kid] {
			if s.revoked == nil {
				s.revoked = make(map[string]bool)
			}
			s.revoked[kid] = true
			changed = true
		}
	}
	loaded := s.loaded
	s.mu.Unlock()
	if changed && loaded != nil {
		s.swap(loaded)
	}
}

// swap makes loaded, without revoked keys, the current set when it differs.
func (s *Store) swap(loaded *Set) {
	s.mu.Lock()
	s.loaded = loaded
	set := loaded.without(s.revoked)
	cur := s.current.Load()
	if cur != nil && cur.version == set.version {
		s.mu.Unlock()
		return
	}
	s.current.Store(set)
	listeners := slices.Clone(s.listeners)
	s.mu.Unlock()
	s.metrics.reloads.WithLabelValues("success").Inc()
	s.metrics.activeKID.Reset()
	s.metrics.activeKID.WithLabelValues(set.active.ID).Set(1)
	s.metrics.keys.Set(float64(len(set.keys.Keys)))
	for _, f := range listeners {
		f(set)
	}
	s.log.Info("key set loaded", "active_kid", set.active.ID, "keys", len(set.keys.Keys))
}

// readSet reads one consistent snapshot of the directory (keyfiles.ReadDir reads a
// mounted Secret through its "..data" link).
func readSet(dir string, private bool) (*Set, error) {
	read := keyfiles.ReadPublicDir
	if private {
		read = keyfiles.ReadDir
	}
	files, err := read(dir)
	if err != nil {
		return nil, fmt.Errorf("loading keys from %s: %w", dir, err)
	}
	set, err := newLoadedSet(files, private)
	if err != nil {
		return nil, fmt.Errorf("loading keys from %s: %w", dir, err)
	}
	return set, nil
}

// setOf decodes files (a Secret's data) as readSet decodes a directory.
func setOf(files map[string][]byte, private bool) (*Set, error) {
	decode := keyfiles.DecodePublic
	if private {
		decode = keyfiles.Decode
	}
	set, err := decode(files)
	if err != nil {
		return nil, err
	}
	return newLoadedSet(set, private)
}

func newLoadedSet(files keydomain.Set, private bool) (*Set, error) {
	set, err := NewSet(files)
	if err == nil && private {
		set, err = set.withSigner(files)
	}
	return set, err
}

// Run watches the keys directory until ctx ends, reloading after every change and
// every Resync interval. It returns nil when ctx ends.
func (s *Store) Run(ctx context.Context) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("starting key directory watcher: %w", err)
	}
	defer w.Close()
	watching := s.watch(w)
	// A change between the caller's first Load and the watch being set up would
	// otherwise wait for the next resync.
	s.reload()
	resync := time.NewTicker(s.opts.Resync)
	defer resync.Stop()
	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return errors.New("key directory watcher closed")
			}
			if ev.Has(fsnotify.Remove) && ev.Name == filepath.Clean(s.dir) {
				watching = false
			}
			debounce.Reset(s.opts.Debounce)
		case err, ok := <-w.Errors:
			if !ok {
				return errors.New("key directory watcher closed")
			}
			s.log.Warn("key directory watcher error", "err", err)
			debounce.Reset(s.opts.Debounce)
		case <-debounce.C:
			s.reload()
		case <-resync.C:
			if !watching {
				watching = s.watch(w)
			}
			s.reload()
		}
	}
}

func (s *Store) watch(w *fsnotify.Watcher) bool {
	if err := w.Add(s.dir); err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			s.log.Warn("cannot watch key directory; relying on periodic resync", "dir", s.dir, "err", err)
		}
		return false
	}
	return true
}

func (s *Store) reload() {
	if err := s.Load(); err != nil {
		s.log.Error("key set reload failed; keeping the last good set", "err", err)
	}
}
