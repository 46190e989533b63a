package httpapi

import (
	"context"
	"net/http"
	"time"
)

// readyTimeout bounds the Redis check of /readyz.
const readyTimeout = time.Second

// healthz answers 200 while the process serves (GET /healthz).
func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeEnvelope(w, http.StatusOK, true, msgOK, nil)
}

// readyz answers 200 when keys are loaded and Redis answers, 503 naming what is
// missing otherwise (GET /readyz).
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	w.Header()[headerCacheControl] = []string{"no-store"}
	switch {
	case s.draining.Load():
		writeError(w, http.StatusServiceUnavailable, msgDraining)
	case s.cfg.Keys.Current() == nil:
		writeError(w, http.StatusServiceUnavailable, msgNoKeys)
	default:
		ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
		defer cancel()
		if err := s.cfg.Store.Ping(ctx); err != nil {
			writeError(w, http.StatusServiceUnavailable, msgStoreDown)
			return
		}
		writeEnvelope(w, http.StatusOK, true, msgOK, nil)
	}
}
