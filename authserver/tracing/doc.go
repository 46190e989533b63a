// Package tracing sets up the auth server's OpenTelemetry traces: an OTLP/HTTP exporter
// when an endpoint is configured, and spans for the Redis commands a traced request
// makes. Without an endpoint nothing is set up and nothing is wrapped.
package tracing
