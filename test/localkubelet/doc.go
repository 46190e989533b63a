// Package localkubelet is a node agent for one machine: it registers a Node, runs the Pods
// the scheduler binds to it as local processes (volumes laid out as the kubelet lays them
// out, service-account tokens from the TokenRequest API, probes, restarts, logs) and writes
// their status back; it provisions hostPath volumes for claims and stands for kube-proxy in
// front of the EndpointSlices. The workload controllers are kube-controller-manager's.
package localkubelet
