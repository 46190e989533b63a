package httpapi

import (
	"context"
	"net/http"
	"time"
)

// readyTimeout bounds the Redis check of /readyz.
const readyTimeout = time.Second

// readiness is the payload of a ready answer.
type readiness struct {
	// Blacklist is "available" when Redis answered the check, "unavailable" otherwise.
	Blacklist string `json:"blacklist"`
}

// healthz answers 200 while the process serves (GET /healthz).
func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeEnvelope(w, http.StatusOK, true, msgOK, nil)
}

// readyz answers 200 while keys are loaded and the server is not draining, 503 naming
// what is missing otherwise (GET /readyz). Redis is reported, not required: the JWKS and
// the public key need no Redis, and while it is down logout and verify answer 503 on
// their own, so failing readiness would only take the key documents offline with it.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	w.Header()[headerCacheControl] = valueNoStore
	switch {
	case s.draining.Load():
		writeError(w, http.StatusServiceUnavailable, msgDraining)
	case s.cfg.Keys.Current() == nil:
		writeError(w, http.StatusServiceUnavailable, msgNoKeys)
	default:
		ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
		defer cancel()
		state := readiness{Blacklist: "available"}
		if err := s.cfg.Store.Ping(ctx); err != nil {
			state.Blacklist = "unavailable"
		}
		writeEnvelope(w, http.StatusOK, true, msgOK, state)
	}
}
