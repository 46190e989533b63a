// Package memstore is an in-memory session and revocation store (sessions.Store) for unit
// tests: the rules of blacklist.Store's scripts on maps, under one mutex, so that handler
// tests need no redis-server. It passes the same conformance suite (storetest) as the
// Redis store, which stays the one tested against Redis' behaviour (persistence, replicas,
// failover, pub/sub, a full or lost store): none of that is modelled here.
package memstore
