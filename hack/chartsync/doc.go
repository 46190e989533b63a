// Command chartsync writes the Helm chart's CRD and manager ClusterRole templates, and the
// authService.spec part of its values schema, from the controller-gen output in config/, so
// that each has one source of truth.
package main
