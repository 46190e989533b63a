package tracing

import (
	"context"
	"fmt"
	"strings"

	"github.com/redis/go-redis/extra/redisotel/v9"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/embedded"
)

// The OpenTelemetry environment variables that turn tracing on or off.
const (
	EnvEndpoint       = "OTEL_EXPORTER_OTLP_ENDPOINT"
	EnvTracesEndpoint = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	EnvSDKDisabled    = "OTEL_SDK_DISABLED"
)

// Enabled says whether traces are exported: an endpoint is given by the flag or by
// the standard OTLP variables, and OTEL_SDK_DISABLED is not true.
func Enabled(flagEndpoint string, getenv func(string) string) bool {
	if strings.EqualFold(strings.TrimSpace(getenv(EnvSDKDisabled)), "true") {
		return false
	}
	return flagEndpoint != "" || getenv(EnvEndpoint) != "" || getenv(EnvTracesEndpoint) != ""
}

// Propagator is how a trace context arrives with a request and leaves with a call:
// W3C Trace Context and Baggage.
func Propagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
}

// NewProvider exports spans over OTLP/HTTP to endpoint, a base URL as
// OTEL_EXPORTER_OTLP_ENDPOINT is (/v1/traces is appended), or to the endpoint of the
// standard OTEL_EXPORTER_OTLP_* variables when it is empty, in batches. The
// resource is service.name authserver (OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES
// override and add) with the server's role; the sampler follows OTEL_TRACES_SAMPLER.
// Shut it down to flush.
func NewProvider(ctx context.Context, endpoint, role string) (*sdktrace.TracerProvider, error) {
	var opts []otlptracehttp.Option
	if endpoint != "" {
		opts = append(opts, otlptracehttp.WithEndpointURL(strings.TrimSuffix(endpoint, "/")+"/v1/traces"))
	}
	exp, err := otlptracehttp.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("configuring the OTLP trace exporter: %w", err)
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", "authserver"), attribute.String("authserver.role", role)),
		resource.WithFromEnv(),
	)
	if err != nil {
		return nil, fmt.Errorf("describing the trace resource: %w", err)
	}
	return sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res)), nil
}

// InstrumentRedis adds a client span for each Redis command made within a traced
// request (give the blacklist store StoreOptions.Traced too). Commands outside one (the revocation subscription, health checks, start-up
// checks) get no span of their own. Command arguments (blacklist ids) are not recorded.
func InstrumentRedis(rdb redis.UniversalClient, tp trace.TracerProvider) error {
	if err := redisotel.InstrumentTracing(rdb,
		redisotel.WithTracerProvider(childOnlyProvider{tp: tp}),
		redisotel.WithDBStatement(false),
		redisotel.WithCallerEnabled(false),
	); err != nil {
		return fmt.Errorf("tracing Redis commands: %w", err)
	}
	return nil
}

// childOnlyProvider hands out tracers that start spans only under a recording parent.
type childOnlyProvider struct {
	embedded.TracerProvider
	tp trace.TracerProvider
}

func (p childOnlyProvider) Tracer(name string, opts ...trace.TracerOption) trace.Tracer {
	return childOnlyTracer{t: p.tp.Tracer(name, opts...)}
}

type childOnlyTracer struct {
	embedded.Tracer
	t trace.Tracer
}

// Start starts a span under the context's span (the blacklist pipeline carries only
// its span context), or returns the context's non-recording span when it has none.
func (t childOnlyTracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ctx, trace.SpanFromContext(ctx)
	}
	return t.t.Start(ctx, name, opts...)
}
