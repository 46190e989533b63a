package keyset

import "github.com/prometheus/client_golang/prometheus"

// metrics are the key set's Prometheus series.
type metrics struct {
	reloads   *prometheus.CounterVec
	activeKID *prometheus.GaugeVec
	keys      prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authserver_key_reloads_total",
			Help: "Key set loads from the keys directory that changed the published keys (success) or failed and kept the last good set (error).",
		}, []string{"result"}),
		activeKID: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "authserver_active_key_info",
			Help: "The kid of the key that currently signs, as a label; the value is always 1.",
		}, []string{"kid"}),
		keys: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "authserver_published_keys",
			Help: "Number of keys that currently verify tokens (next, active and retired).",
		}),
	}
	m.reloads.WithLabelValues("success")
	m.reloads.WithLabelValues("error")
	if reg != nil {
		reg.MustRegister(m.reloads, m.activeKID, m.keys)
	}
	return m
}
