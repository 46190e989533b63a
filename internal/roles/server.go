package roles

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"

	"github.com/hiringo/auth-operator/authserver/blacklist"
	"github.com/hiringo/auth-operator/authserver/httpapi"
	"github.com/hiringo/auth-operator/authserver/issuance"
	"github.com/hiringo/auth-operator/authserver/keyset"
	"github.com/hiringo/auth-operator/authserver/sessions"
	"github.com/hiringo/auth-operator/authserver/storestate"
	"github.com/hiringo/auth-operator/authserver/token"
	"github.com/hiringo/auth-operator/authserver/userlogouts"
	"github.com/hiringo/auth-operator/authserver/verifycache"
	"github.com/hiringo/auth-operator/internal/version"
)

// Server is one auth server, built and listening, not yet serving.
type Server struct {
	// API is the HTTP API; Keys the key source; Sessions the revocation service.
	API      *httpapi.Server
	Keys     *keyset.Store
	Sessions *sessions.Service
	// Cache is the verifier's verified-token cache; nil without one.
	Cache *verifycache.Cache
	// Store is the Redis store; nil when Config.Store was given.
	Store *blacklist.Store

	cfg         Config
	log         *slog.Logger
	issuer      bool
	certs       *certwatcher.CertWatcher
	ln, adminLn net.Listener
	tasks       []func(context.Context) error
	following   chan struct{}
	closers     []func()
}

// NewVerifier builds a verifier: logout, verify, introspection, the key documents and
// discovery, from public key material only.
func NewVerifier(ctx context.Context, cfg Config) (*Server, error) { return build(ctx, cfg, false) }

// NewIssuer builds an issuer: issuance, refresh and revocation, from the private keys.
func NewIssuer(ctx context.Context, cfg Config) (*Server, error) { return build(ctx, cfg, true) }

func build(ctx context.Context, cfg Config, issuer bool) (_ *Server, err error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
		cfg.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), version.Collector("authserver"))
	}
	cfg.Lifetimes = cfg.Lifetimes.WithDefaults()
	cfg.KeyReload.Private, cfg.Follow.Logger = issuer, cfg.Logger
	log := cfg.Logger
	s := &Server{cfg: cfg, log: log, issuer: issuer, following: make(chan struct{})}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	// The serving certificate is loaded first: one that does not load is a
	// configuration error, reported before anything waits for Redis.
	if cfg.TLSCertFile != "" {
		if s.certs, err = newCertWatcher(cfg.TLSCertFile, cfg.TLSKeyFile, log, cfg.Registry); err != nil {
			return nil, err
		}
		s.tasks = append(s.tasks, func(ctx context.Context) error {
			if err := s.certs.Start(ctx); err != nil {
				log.Error("watching the TLS certificate failed: a renewed certificate is not picked up until a restart", "err", err)
			}
			return nil
		})
	}
	s.Keys = keyset.NewStore(cfg.KeysDir, log, cfg.Registry, cfg.KeyReload)
	if err := s.Keys.Load(); err != nil {
		log.Error("no key set yet; not ready until one loads", "err", err)
	}
	store := cfg.Store
	if store == nil {
		if err := s.openStore(ctx); err != nil {
			return nil, err
		}
		store = s.Store
	}
	verifier := token.NewVerifier(s.Keys, token.VerifierOptions{
		Leeway: cfg.Leeway, MaxBytes: cfg.MaxTokenBytes, Issuer: cfg.Issuer,
		Audiences: cfg.Audiences, RequireAudience: cfg.RequireAudience,
		MaxAccessLifetime: cfg.Lifetimes.Access, MaxRefreshLifetime: cfg.Lifetimes.Refresh, Now: cfg.Now,
	})
	if cfg.VerifyCacheSize > 0 && !issuer {
		if s.Cache, err = verifycache.New(s.Keys, verifycache.Options{Size: cfg.VerifyCacheSize, Registerer: cfg.Registry, Now: cfg.Now}); err != nil {
			return nil, err
		}
	}
	s.Sessions = sessions.New(sessions.Config{Verifier: verifier, Store: store, Cache: s.Cache, Lifetimes: cfg.Lifetimes, Now: cfg.Now})
	apiCfg := httpapi.Config{
		Role: httpapi.RoleVerifier, Issuer: cfg.Issuer, TokenServiceURL: cfg.TokenServiceURL,
		Keys: s.Keys, Store: store, Sessions: s.Sessions, TracerProvider: s.cfg.TracerProvider,
		CompatStatusCodes: cfg.CompatStatusCodes, CORSOrigins: cfg.CORSOrigins,
		JWKSMaxAge: cfg.JWKSMaxAge, Logger: log, Registry: cfg.Registry,
	}
	kube, err := s.authorize(&apiCfg)
	if err != nil {
		return nil, err
	}
	if issuer {
		apiCfg.Role = httpapi.RoleIssuer
		apiCfg.Issuance = issuance.New(issuance.Config{
			Keys: s.Keys, Verifier: verifier, Sessions: s.Sessions,
			Issuer: cfg.Issuer, Audiences: cfg.Audiences, SingleSession: cfg.SingleSession,
			RefreshGrace: cfg.RefreshGrace, RefreshesPerMinute: cfg.RefreshesPerMinute, SessionMaxLifetime: cfg.SessionMaxLifetime,
		})
	}
	if s.API, err = httpapi.New(apiCfg); err != nil {
		return nil, err
	}
	if err := s.listen(); err != nil {
		return nil, err
	}
	s.addKeyTasks(kube)
	if err := s.addStoreTasks(ctx, kube); err != nil {
		return nil, err
	}
	return s, nil
}

// openStore connects to Redis as the configuration says, traced when tracing is on.
func (s *Server) openStore(ctx context.Context) error {
	cfg := &s.cfg
	blacklist.RouteClientLogs(s.log)
	mode, err := resolveRedisMode(ctx, cfg.Redis, s.log)
	if err != nil {
		return err
	}
	cfg.Redis.Mode = mode
	if err := CheckReplicaAcks(cfg.Redis, cfg.ReplicaAcks.Min); err != nil {
		return err
	}
	client, err := blacklist.NewClient(cfg.Redis)
	if err != nil {
		return err
	}
	s.closers = append(s.closers, func() { client.Close() })
	if err := s.startTracing(ctx, client); err != nil {
		return err
	}
	s.Store = blacklist.NewStore(client, blacklist.StoreOptions{
		Traced: cfg.TracerProvider != nil, Prefix: cfg.RedisKeyPrefix, Registerer: cfg.Registry, ReplicaAcks: cfg.ReplicaAcks, KeysCapacity: cfg.KeysCapacity, Logger: s.log,
	})
	s.closers = append(s.closers, s.Store.Close)
	return nil
}

// authorize sets the authorizers of the role's callers that the configuration does not
// give, reviewing their ServiceAccount tokens, and returns the Kubernetes client of the
// issuer's watches; nil when the server needs none.
func (s *Server) authorize(api *httpapi.Config) (kubernetes.Interface, error) {
	cfg := s.cfg
	api.Clients, api.Introspection = cfg.Clients, cfg.Introspection
	watches := s.issuer && (cfg.KeysSecret != "" || cfg.UserLogoutsConfigMap != "" || cfg.StoreStateConfigMap != "")
	reviewIssuance := s.issuer && cfg.Clients == nil
	reviewIntrospection := !s.issuer && cfg.Introspection == nil && len(cfg.IntrospectionClients) > 0
	if !reviewIssuance && !reviewIntrospection && !watches {
		return nil, nil
	}
	// TokenReviews have a client, and so a rate limit, of their own, so a burst of
	// callers neither waits behind the watches nor holds them up.
	reviews, err := newReviewClients(cfg.Kubeconfig)
	if err != nil {
		return nil, err
	}
	if reviewIssuance {
		api.Clients = reviews.authenticator(cfg.ClientAudience, cfg.IssuanceClients)
	}
	if reviewIntrospection {
		api.Introspection = reviews.authenticator(cfg.ClientAudience, cfg.IntrospectionClients)
	}
	return reviews.kube, nil
}

// listen opens the API's and the admin port's listeners.
func (s *Server) listen() error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", s.cfg.Listen, err)
	}
	s.ln = ln
	adminLn, err := net.Listen("tcp", s.cfg.AdminListen)
	if err != nil {
		return fmt.Errorf("listening on %s (--admin-listen): %w", s.cfg.AdminListen, err)
	}
	s.adminLn = adminLn
	return nil
}

// addKeyTasks follows the keys: the issuer's private key Secret through the API when it
// names one (a rotation or a revocation takes effect at once, not after the kubelet's
// volume sync, which would also bring stale versions back), else the keys directory;
// and the issuer's administrative user logouts.
func (s *Server) addKeyTasks(kube kubernetes.Interface) {
	cfg := s.cfg
	if s.issuer && cfg.KeysSecret != "" {
		s.tasks = append(s.tasks, func(ctx context.Context) error {
			return s.Keys.FollowSecret(ctx, keyset.SecretConfig{
				Client: kube, Namespace: cfg.Namespace, Name: cfg.KeysSecret, Revocations: s.Sessions, Logger: s.log,
			})
		})
	} else {
		s.tasks = append(s.tasks, s.Keys.Run)
	}
	if s.issuer && cfg.UserLogoutsConfigMap != "" {
		applier, _ := os.Hostname()
		s.tasks = append(s.tasks, func(ctx context.Context) error {
			return userlogouts.Run(ctx, userlogouts.Config{
				Client: kube, Namespace: cfg.Namespace, Name: cfg.UserLogoutsConfigMap, Sessions: s.Sessions, Applier: applier, Logger: s.log,
			})
		})
	}
}

// addStoreTasks watches the Redis store: its generation (a loss of its data, recorded
// by the issuer in its ConfigMap, purging the verifier's cache), its configuration and
// memory, and, on a verifier, the revocation channel. A given store has none of these.
func (s *Server) addStoreTasks(ctx context.Context, kube kubernetes.Interface) error {
	bl, cfg, log := s.Store, s.cfg, s.log
	if bl == nil {
		close(s.following)
		if s.Cache != nil {
			// One process on a given store hears of no revocation but its own, which
			// the sessions service applies to its cache itself.
			s.Cache.Resync()
		}
		return nil
	}
	generation := blacklist.GenerationOptions{Logger: log}
	var start func(context.Context) (func(blacklist.GenerationEvent), <-chan struct{})
	switch {
	case s.issuer && cfg.StoreStateConfigMap != "":
		rec := storestate.Recorder{Client: kube, Namespace: cfg.Namespace, Name: cfg.StoreStateConfigMap, Logger: log}
		held, err := rec.Load(ctx)
		if err != nil {
			return err
		}
		bl.Hold(held)
		start = rec.Start
	case s.Cache != nil:
		// Tokens held may be issued before a loss's cutoff: each is checked again.
		generation.OnChange = func(ev blacklist.GenerationEvent) {
			if ev.Lost {
				s.Cache.Purge()
			}
		}
	}
	// The first check is made before serving, so that a server started after a loss
	// was detected applies its cutoff from its first request (when Redis answers).
	firstCtx, firstDone := context.WithTimeout(ctx, 2*time.Second)
	if _, err := bl.CheckGeneration(firstCtx); err != nil {
		log.Warn("store generation not checked yet", "err", err)
	}
	firstDone()
	s.tasks = append(s.tasks, func(ctx context.Context) error {
		opts := generation
		var recorded <-chan struct{}
		if start != nil {
			opts.OnChange, recorded = start(ctx)
		}
		bl.WatchGeneration(ctx, opts)
		if recorded != nil {
			<-recorded
		}
		return nil
	}, func(ctx context.Context) error {
		bl.WatchMemory(ctx, blacklist.MemoryOptions{Logger: log})
		return nil
	})
	s.tasks = append(s.tasks, checks(bl, log)...)
	if s.issuer {
		close(s.following)
		return nil
	}
	s.tasks = append(s.tasks, func(ctx context.Context) error {
		bl.Follow(ctx, &firstResync{Revocations: sessions.Revocations{Cache: s.Cache, Keys: s.Keys}, done: s.following}, s.cfg.Follow)
		return nil
	})
	return nil
}

// Following is closed once the server follows the revocation channel: its first
// subscription is confirmed (at once for an issuer, or with a given store).
func (s *Server) Following() <-chan struct{} { return s.following }

// firstResync closes done at the first confirmed subscription.
type firstResync struct {
	sessions.Revocations
	done   chan struct{}
	closed bool
}

func (f *firstResync) Resync() {
	f.Revocations.Resync()
	if !f.closed {
		f.closed = true
		close(f.done)
	}
}

// Addr and AdminAddr are the addresses the API and the admin port listen on.
func (s *Server) Addr() net.Addr      { return s.ln.Addr() }
func (s *Server) AdminAddr() net.Addr { return s.adminLn.Addr() }

// Run serves until ctx ends, with everything that runs beside the API in one errgroup,
// then drains: /readyz fails for ShutdownDelay while requests are still served, and
// requests in flight get ShutdownTimeout. A failing part stops the server at once with
// its error. The server is closed when Run returns.
func (s *Server) Run(ctx context.Context) error {
	defer s.close()
	cfg := s.cfg
	srv := newHTTPServer(s.API, s.log)
	if s.certs != nil {
		srv.TLSConfig = serverTLSConfig(s.certs)
	}
	admin := newHTTPServer(s.API.Admin(), s.log)
	g, gctx := errgroup.WithContext(ctx)
	failed := make(chan error, len(s.tasks)+2)
	run := func(f func() error) {
		g.Go(func() error {
			err := f()
			if err != nil {
				failed <- err
			}
			return err
		})
	}
	for _, task := range s.tasks {
		run(func() error { return task(gctx) })
	}
	run(func() error {
		if s.certs != nil {
			return served(srv.ServeTLS(s.ln, "", ""))
		}
		return served(srv.Serve(s.ln))
	})
	run(func() error { return served(admin.Serve(s.adminLn)) })
	// Both servers are closed before the group is waited for, so that one failing does
	// not leave the other serving; the admin port stays up through the drain, as the
	// kubelet reads the failing /readyz from it.
	stop := func(err error) error {
		_ = srv.Close()
		_ = admin.Close()
		_ = g.Wait()
		return err
	}
	role := httpapi.RoleVerifier
	if s.issuer {
		role = httpapi.RoleIssuer
	}
	s.log.Info("serving", "role", role, "addr", s.ln.Addr().String(), "tls", s.certs != nil, "admin_addr", s.adminLn.Addr().String(), "keys_dir", cfg.KeysDir, "compat_status_codes", cfg.CompatStatusCodes)
	select {
	case err := <-failed:
		return stop(err)
	case <-ctx.Done():
	}
	s.log.Info("draining", "delay", cfg.ShutdownDelay.String(), "timeout", cfg.ShutdownTimeout.String())
	s.API.Drain()
	select {
	case <-time.After(cfg.ShutdownDelay):
	case err := <-failed:
		return stop(err)
	}
	shutdownCtx, done := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer done()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return stop(fmt.Errorf("draining HTTP connections: %w", err))
	}
	s.log.Info("stopped")
	return stop(nil)
}

// served is a server's Serve error, nil once it was shut down or closed.
func served(err error) error {
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("serving HTTP: %w", err)
}

// close releases what the server opened, last opened first.
func (s *Server) close() {
	for _, ln := range []net.Listener{s.ln, s.adminLn} {
		if ln != nil {
			_ = ln.Close()
		}
	}
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
	s.closers = nil
}

// newHTTPServer sets the timeouts and header limit that keep slow or huge requests
// from holding the server.
func newHTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}
