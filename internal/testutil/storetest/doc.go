// Package storetest is the conformance suite of the session and revocation store
// (sessions.Store), as Dex's storage/conformance is of its storages: the same cases run
// against the Redis store (authserver/blacklist, on a real redis-server) and against the
// in-memory store of unit tests (memstore), so that both keep one behaviour.
package storetest
