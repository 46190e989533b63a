package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/rs/cors"
)

// seedSecurityHeaders are the headers the original sent on every response. A list,
// not a map: ranging over a map on every request costs more than five assignments.
var seedSecurityHeaders = []struct {
	name  string
	value []string
}{
	{"Content-Security-Policy", []string{"default-src 'self' 'unsafe-inline'"}},
	{"Strict-Transport-Security", []string{"max-age=3600; includeSubdomains"}},
	{"X-Content-Type-Options", []string{"nosniff"}},
	{"X-Frame-Options", []string{"SAMEORIGIN"}},
	{"X-Xss-Protection", []string{"1; mode=block"}},
}

// securityHeaders sets the original's security headers on every response. The value
// slices are shared by every response (see valueNoStore).
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		for _, sh := range seedSecurityHeaders {
			h[sh.name] = sh.value
		}
		next.ServeHTTP(w, r)
	})
}

// newCORS allows browser calls from origins ("*" for any) and always sends
// Vary: Origin. With no origins, no cross-origin call is allowed.
func newCORS(origins []string) *cors.Cors {
	opts := cors.Options{
		AllowedMethods:   []string{http.MethodGet, http.MethodHead, http.MethodPost},
		AllowedHeaders:   []string{"Authorization", "Content-Type"},
		ExposedHeaders:   []string{"X-Auth-User-Id", "X-Auth-User-Email", "X-Auth-Session-Id"},
		MaxAge:           int((10 * time.Minute).Seconds()),
		AllowCredentials: false,
	}
	if len(origins) == 0 {
		opts.AllowOriginFunc = func(string) bool { return false }
	} else {
		opts.AllowedOrigins = slices.Clone(origins)
	}
	return cors.New(opts)
}

// limitBody rejects requests whose declared body is over max bytes and caps the rest.
func limitBody(next http.Handler, max int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > max {
			w.Header().Set("Connection", "close")
			writeError(w, http.StatusRequestEntityTooLarge, msgTooLarge)
			return
		}
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = http.MaxBytesReader(w, r.Body, max)
		}
		next.ServeHTTP(w, r)
	})
}

// recoverPanics answers 500 with the envelope when a handler panics, and logs the
// panic value and route (never the request's headers).
func recoverPanics(next http.Handler, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v)
			}
			log.Error("handler panicked", "method", r.Method, "path", r.URL.Path, "panic", v)
			writeError(w, http.StatusInternalServerError, msgInternal)
		}()
		next.ServeHTTP(w, r)
	})
}

// logRequests writes one debug record per request: method, path, status and
// duration. It costs nothing when debug logging is off.
func logRequests(next http.Handler, log *slog.Logger) http.Handler {
	if !log.Enabled(context.Background(), slog.LevelDebug) {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := statusRecorder{ResponseWriter: w}
		next.ServeHTTP(&rec, r)
		log.Debug("request", "method", r.Method, "path", r.URL.Path, "status", rec.status(), "duration", time.Since(start))
	})
}
