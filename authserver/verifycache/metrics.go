package verifycache

import "github.com/prometheus/client_golang/prometheus"

// metrics are the cache's Prometheus series.
type metrics struct {
	lookups struct {
		hit, miss, untrusted prometheus.Counter
	}
	entries prometheus.Gauge
	trusted prometheus.Gauge
	resyncs prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{}
	lookups := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "authserver_verify_cache_lookups_total",
		Help: "Verified-token cache lookups by result: hit, miss, or untrusted (revocation subscription not confirmed).",
	}, []string{"result"})
	m.lookups.hit = lookups.WithLabelValues("hit")
	m.lookups.miss = lookups.WithLabelValues("miss")
	m.lookups.untrusted = lookups.WithLabelValues("untrusted")
	m.entries = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "authserver_verify_cache_entries",
		Help: "Tokens currently in the verified-token cache.",
	})
	m.trusted = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "authserver_verify_cache_trusted",
		Help: "1 while the revocation subscription is confirmed and the cache answers, 0 while it is bypassed.",
	})
	m.resyncs = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "authserver_verify_cache_resyncs_total",
		Help: "Times the cache was emptied and trusted again after its revocation subscription was (re)confirmed.",
	})
	if reg != nil {
		reg.MustRegister(lookups, m.entries, m.trusted, m.resyncs)
	}
	return m
}
