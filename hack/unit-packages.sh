#!/usr/bin/env bash
# Prints the packages of the module whose tests start no process, for `make test-unit`.
#
# A package is left out when its test binary links envtest (a kube-apiserver and etcd) or a
# redistest helper (a redis-server), or when its tests import os/exec themselves (they run
# helm, kubectl or a built binary). Derived from `go list`, so a new package or a moved
# helper needs no list to be kept by hand. os/exec is checked only as a direct import: every
# test binary links it through the testing package's fuzzing support.
set -euo pipefail
cd "$(dirname "$0")/.."

spawning() {
	go list -test -f '{{if .ForTest}}{{else}}{{.ImportPath}} {{join .Deps " "}}{{end}}' ./... |
		awk '/ sigs\.k8s\.io\/controller-runtime\/pkg\/envtest( |$)|\/redistest( |$)/ { sub(/\.test$/, "", $1); print $1 }'
	go list -f '{{.ImportPath}} {{join .TestImports " "}} {{join .XTestImports " "}}' ./... |
		awk '/ os\/exec( |$)/ { print $1 }'
}

go list ./... | grep -vxF -f <(spawning | sort -u)
