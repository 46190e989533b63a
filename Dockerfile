# syntax=docker/dockerfile:1

# One image holds both binaries: /manager (the operator) and /authserver (the server it deploys),
# so the operator deploys the auth server from its own image and the two never skew.

# The builder runs on the build machine's platform and cross-compiles for the target one.
FROM --platform=$BUILDPLATFORM golang:1.26.8 AS builder
ARG TARGETOS
ARG TARGETARCH

WORKDIR /workspace

# Modules first, so a source change does not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download

COPY . .

# Static binaries: no cgo, so the minimal base image needs no libc.
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=${TARGETOS:-linux} GOARCH=${TARGETARCH} \
    go build -trimpath -ldflags="-s -w" -o /out/manager ./cmd/manager && \
    CGO_ENABLED=0 GOOS=${TARGETOS:-linux} GOARCH=${TARGETARCH} \
    go build -trimpath -ldflags="-s -w" -o /out/authserver ./cmd/authserver

# distroless static: CA certificates and /etc/passwd for the nonroot user, no shell, no package manager.
FROM gcr.io/distroless/static-debian12:nonroot
LABEL org.opencontainers.image.title="auth-operator" \
      org.opencontainers.image.description="Kubernetes operator for rotating ES256 signing keys, a Redis token blacklist and the auth server" \
      org.opencontainers.image.source="https://github.com/hiringo/auth-operator"
COPY --from=builder /out/manager /manager
COPY --from=builder /out/authserver /authserver
USER 65532:65532
ENTRYPOINT ["/manager"]
