// Package redistest starts real redis-server processes on free loopback ports for
// tests: one server, a replication group watched by redis-sentinel processes, or a
// Redis Cluster of several masters.
package redistest
