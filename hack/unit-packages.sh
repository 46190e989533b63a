#!/usr/bin/env bash
# Prints the packages of the module whose tests start no process, for `make test-unit`.
#
# Tests come in two tiers, told apart by a build tag: a test file that needs a process (an
# envtest kube-apiserver and etcd, a redis-server, helm or kubectl, a built binary) says
# //go:build !unit, so `go test -tags unit` builds the pure tier alone. A package is left
# out when, even with the tag, its test binary links envtest or a redistest helper, or its
# tests import os/exec themselves. Derived from `go list -tags unit`, so a new package, a
# moved helper or a newly tagged file needs no list to be kept by hand. os/exec is checked
# only as a direct import: every test binary links it through the testing package's fuzzing
# support.
set -euo pipefail
cd "$(dirname "$0")/.."

spawning() {
	go list -tags unit -test -f '{{if .ForTest}}{{else}}{{.ImportPath}} {{join .Deps " "}}{{end}}' ./... |
		awk '/ sigs\.k8s\.io\/controller-runtime\/pkg\/envtest( |$)|\/redistest( |$)/ { sub(/\.test$/, "", $1); print $1 }'
	go list -tags unit -f '{{.ImportPath}} {{join .TestImports " "}} {{join .XTestImports " "}}' ./... |
		awk '/ os\/exec( |$)/ { print $1 }'
}

go list -tags unit ./... | grep -vxF -f <(spawning | sort -u)
