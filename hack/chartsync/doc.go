// Command chartsync writes the Helm chart's CRD and manager ClusterRole templates from the
// controller-gen output in config/, so that each has one source of truth.
package main
