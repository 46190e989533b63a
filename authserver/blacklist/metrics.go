package blacklist

import "github.com/prometheus/client_golang/prometheus"

// metrics are the blacklist's Prometheus series.
type metrics struct {
	ops *prometheus.CounterVec
	// checkListed, checkClear and checkError are ops' series of Check, resolved once:
	// every uncached verification counts one.
	checkListed, checkClear, checkError prometheus.Counter
	revocations                         prometheus.Counter
	dataLost                            prometheus.Counter
	memory                              memoryGauges
}

// memoryGauges are the series WatchMemory sets.
type memoryGauges struct {
	used, max, keys, keysCapacity prometheus.Gauge
}

// opResults are the results each operation counts, all created at zero so that an
// alert or a dashboard finds every series before its first event.
var opResults = map[string][]string{
	"add":    {"added", "exists", "replicas_behind", "not_stored", "unpublished", "error"},
	"cutoff": {"added", "exists", "replicas_behind", "not_stored", "unpublished", "error"},
	"rotate": {"added", "grace", "reuse", "exists", "rate_limited", "session_ended", "replicas_behind", "not_stored", "unpublished", "error"},
	"issue":  {"added", "replicas_behind", "full", "unpublished", "error"},
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{ops: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "authserver_blacklist_operations_total",
		Help: "Session store operations by kind (add: logout, cutoff: logout everywhere, rotate: refresh, issue: a new session, check) and result (added, exists, grace: a retried refresh answered within the grace period, reuse: a refresh token presented again, its session revoked, rate_limited, session_ended, full, replicas_behind, not_stored, unpublished, listed, clear, error).",
	}, []string{"op", "result"}),
		revocations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "authserver_revocations_received_total",
			Help: "Revocations received from other replicas (and this one) over Redis pub/sub.",
		}),
		dataLost: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "authserver_blacklist_store_data_lost_total",
			Help: "Times this server found the blacklist store's generation marker gone or replaced (its entries lost); tokens issued before the detection are refused until they expire.",
		}),
	}
	for op, results := range opResults {
		for _, r := range results {
			m.ops.WithLabelValues(op, r)
		}
	}
	m.memory = memoryGauges{
		used: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "authserver_redis_used_memory_bytes",
			Help: "Memory the session store's Redis uses (used_memory; on a Cluster, of the primary closest to its limit), read every 15s.",
		}),
		max: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "authserver_redis_max_memory_bytes",
			Help: "The maxmemory of that Redis primary; 0 for none. At it, new logins are refused (503) while revocations are still stored.",
		}),
		keysCapacity: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "authserver_redis_keys_capacity",
			Help: "Keys the session store is sized for: --session-capacity (the operator's spec.redis.managed.sessionCapacity) times 4, the most keys one session holds; 0 when unknown (an external Redis).",
		}),
		keys: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "authserver_redis_keys",
			Help: "Keys in the session store's Redis database, on every primary: one per live session plus one per revoked stamp, session and user (and whatever else shares the database).",
		}),
	}
	m.checkListed = m.ops.WithLabelValues("check", "listed")
	m.checkClear = m.ops.WithLabelValues("check", "clear")
	m.checkError = m.ops.WithLabelValues("check", "error")
	if reg != nil {
		reg.MustRegister(m.ops, m.revocations, m.dataLost, m.memory.used, m.memory.max, m.memory.keys, m.memory.keysCapacity)
	}
	return m
}
