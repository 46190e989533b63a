// Package localkubelet plays the kubelet's part on one machine: it runs the pods of labelled
// Deployments and StatefulSets as local processes, with their Secret and ConfigMap volumes
// laid out as the kubelet lays them out, and writes the workloads' status back to the API server.
package localkubelet
