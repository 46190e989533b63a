// Package redistopology decides, before a Redis or Sentinel pod of a replicated managed
// Redis starts, which Redis pod is the primary: after a failover the Sentinels own the
// topology, so a restarting pod asks them rather than trusting its ordinal.
package redistopology
