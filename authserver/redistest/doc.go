// Package redistest starts a real redis-server on a free loopback port for tests.
package redistest
