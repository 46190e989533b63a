package controllers

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

var (
	keyRotations = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "authoperator_key_rotations_total",
		Help: "Signing-key rotations, by AuthService and by trigger (schedule, manual, revocation).",
	}, []string{"namespace", "name", "trigger"})

	nextRotationTimestamp = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "authoperator_next_rotation_timestamp_seconds",
		Help: "Unix time at which the next key of an AuthService is due to take over.",
	}, []string{"namespace", "name"})

	readyStatus = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "authoperator_authservice_ready_status",
		Help: "1 when an AuthService's Ready condition is True, else 0.",
	}, []string{"namespace", "name"})
)

// rotationTriggers are the trigger label values of keyRotations.
var rotationTriggers = []string{"schedule", "manual", "revocation"}

func init() {
	ctrlmetrics.Registry.MustRegister(keyRotations, nextRotationTimestamp, readyStatus)
}

// recordNextRotation sets when the next key of an AuthService takes over, and makes its
// rotation counters exist at zero: a counter that appears only at its first increment hides
// that increment from rate() and increase(), so the first rotation would not show on a
// dashboard or in an alert.
func recordNextRotation(namespace, name string, at time.Time) {
	nextRotationTimestamp.WithLabelValues(namespace, name).Set(float64(at.Unix()))
	for _, trigger := range rotationTriggers {
		keyRotations.WithLabelValues(namespace, name, trigger)
	}
}

// forgetMetrics drops the series of a deleted AuthService.
func forgetMetrics(namespace, name string) {
	labels := prometheus.Labels{"namespace": namespace, "name": name}
	keyRotations.DeletePartialMatch(labels)
	nextRotationTimestamp.Delete(labels)
	readyStatus.Delete(labels)
}
