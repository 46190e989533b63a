package httpapi

import (
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// httpMetrics are the per-route request series.
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authserver_http_requests_total",
			Help: "HTTP requests by route, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "authserver_http_request_duration_seconds",
			Help:    "Time to answer an HTTP request, by route and method.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}, []string{"route", "method"}),
	}
	reg.MustRegister(m.requests, m.duration)
	return m
}

// instrument counts and times the requests of one route. It does what promhttp's
// InstrumentHandlerCounter and InstrumentHandlerDuration do, without building a
// label map per request: this wrapper is on every forward-auth check. The series a
// route last used for each method are kept, so a request usually looks none up.
func (m *httpMetrics) instrument(route string, h http.Handler) http.Handler {
	var last [len(methodLabels) + 1]atomic.Pointer[routeSeries]
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := recorders.Get().(*statusRecorder)
		rec.ResponseWriter, rec.code = w, 0
		h.ServeHTTP(rec, r)
		code := rec.status()
		rec.ResponseWriter = nil
		recorders.Put(rec)
		i := methodIndex(r.Method)
		s := last[i].Load()
		if s == nil || s.code != code {
			method := methodName(i)
			s = &routeSeries{code: code,
				duration: m.duration.WithLabelValues(route, method),
				requests: m.requests.WithLabelValues(route, method, codeLabel(code))}
			last[i].Store(s)
		}
		s.duration.Observe(time.Since(start).Seconds())
		s.requests.Inc()
	})
}

// routeSeries are the series of one route and method, and of one status code.
type routeSeries struct {
	code     int
	duration prometheus.Observer
	requests prometheus.Counter
}

// recorders recycles the status recorders of instrument (one per request otherwise).
var recorders = sync.Pool{New: func() any { return new(statusRecorder) }}

// statusRecorder remembers the status code a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Unwrap gives http.ResponseController the underlying writer.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (s *statusRecorder) status() int {
	if s.code == 0 {
		return http.StatusOK
	}
	return s.code
}

// methodLabels keeps the method label to the standard methods, lower case as
// promhttp writes them; anything else is "other".
var methodLabels = [...]struct{ method, label string }{
	{http.MethodGet, "get"}, {http.MethodHead, "head"}, {http.MethodPost, "post"},
	{http.MethodPut, "put"}, {http.MethodDelete, "delete"}, {http.MethodOptions, "options"},
	{http.MethodPatch, "patch"}, {http.MethodConnect, "connect"}, {http.MethodTrace, "trace"},
}

// methodIndex is m's place in methodLabels; len(methodLabels) for any other method.
func methodIndex(m string) int {
	for i, l := range methodLabels {
		if l.method == m {
			return i
		}
	}
	return len(methodLabels)
}

func methodName(i int) string {
	if i < len(methodLabels) {
		return methodLabels[i].label
	}
	return "other"
}

var codeLabels = func() map[int]string {
	labels := make(map[int]string)
	for code := 100; code < 600; code++ {
		labels[code] = strconv.Itoa(code)
	}
	return labels
}()

func codeLabel(code int) string {
	if l, ok := codeLabels[code]; ok {
		return l
	}
	return "other"
}
