// Package e2e tests the whole system on one machine: the real operator process against a
// real API server, and the pods it creates run by the local kubelet as the real auth
// server and a real redis-server.
package e2e
