// Command load is the `make bench` load run: it starts Redis, the auth server and two
// floor servers on loopback, drives each with vegeta and prints req/s and latency
// percentiles side by side.
package main
