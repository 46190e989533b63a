package managedredis

import (
	"fmt"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/hiringo/auth-operator/internal/redisconf"
)

// The managed Redis's probes. Liveness is a TCP connect: a process that accepts connections
// is alive whatever the topology. Readiness is an exec probe that asks the server itself, in
// POSIX sh with redis-cli only (both in the official images and in the project's), the
// password read from the mounted config volume, never passed on a command line.

// podPasswordFile is where the Redis and Sentinel containers find the password their
// readiness probe authenticates with.
const podPasswordFile = confDir + "/password"

// liveness is the Redis and Sentinel containers' liveness: the port accepts connections.
func liveness(port string) *corev1.Probe {
	return &corev1.Probe{
		ProbeHandler:        corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromString(port)}},
		InitialDelaySeconds: 5, PeriodSeconds: 10, FailureThreshold: 6,
	}
}

// execReadiness runs script with sh every few seconds.
func execReadiness(script string) *corev1.Probe {
	return &corev1.Probe{
		ProbeHandler:  corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"sh", "-c", script}}},
		PeriodSeconds: 3, TimeoutSeconds: 5, FailureThreshold: 1, SuccessThreshold: 1,
	}
}

// recordingReadiness is a replicated Redis pod's readiness: the start gate's redis-probe,
// which passes as redisReadinessScript does and records the replication offset on the
// volume (the election after a restart of every pod compares them), and passes while the
// gate elects, so that the StatefulSet starts the next pod.
func recordingReadiness() *corev1.Probe {
	return &corev1.Probe{
		ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{
			redisGate, "redis-probe", "--password-file", podPasswordFile, "--record-file", recordFile, "--electing-file", electingFile,
		}}},
		PeriodSeconds: 3, TimeoutSeconds: 5, FailureThreshold: 1, SuccessThreshold: 1,
	}
}

// authenticate exports the password for redis-cli (REDISCLI_AUTH), read with the shell's
// own read, since the images need no cat. The Secret's file ends without a newline, where
// read reports end of file although it has read the line.
const authenticate = `{ read -r REDISCLI_AUTH < ` + podPasswordFile + ` || [ -n "$REDISCLI_AUTH" ]; } && export REDISCLI_AUTH && `

// redisReadinessScript passes when Redis answers and is a primary, or a replica whose link to
// its primary is up (so a replica that has not synchronised, or lost its primary, is not
// ready); a server still loading its AOF answers neither.
var redisReadinessScript = authenticate +
	`out=$(redis-cli -p ` + strconv.Itoa(Port) + ` info replication) && ` +
	`case "$out" in *role:master*|*master_link_status:up*) exit 0 ;; esac; exit 1`

// sentinelReadinessScript passes when the Sentinel could fail the primary masterName over:
// it monitors it and sees it up (its flags are "master" alone, not s_down, o_down or
// disconnected) and knows a replica to promote. A Sentinel learns the replicas from the
// primary's INFO, every 10 s: one that started before they attached knows none for up to
// that long, and were the primary to die then, it would abort every failover ("no good
// slave") until the primary came back.
func sentinelReadinessScript(masterName string) string {
	return authenticate +
		fmt.Sprintf(`redis-cli -p %d --raw sentinel master %s | `, redisconf.SentinelPort, masterName) +
		`{ f= n=0; while read -r k && read -r v; do case "$k" in flags) f=$v ;; num-slaves) n=$v ;; esac; done; ` +
		`[ "$f" = master ] && [ "$n" -ge 1 ]; }`
}
