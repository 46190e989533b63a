// Package managedredis builds the Redis the operator runs for an AuthService, one pod or
// a primary with replicas and Sentinels, and plans the switch between them: pure builders
// of the desired objects, and Desired, which decides from what Read found in the cluster
// what one pass removes, replaces and applies. The controller does the writes.
package managedredis
