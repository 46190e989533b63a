#!/usr/bin/env bash
# Prints the packages of the module whose tests start no process, for `make test-unit`.
#
# A package is left out when its test binary links envtest (a kube-apiserver and etcd) or a
# redistest helper (a redis-server), or when its tests import os/exec themselves (they run
# helm, kubectl or a built binary). Derived from `go list`, so a new package or a moved
# helper needs no list to be kept by hand. os/exec is checked only as a direct import: every
# test binary links it through the testing package's fuzzing support.
#
# A package is kept anyway when a test file of it says `// test-unit: envtest starts lazily
# and -short skips it (read by hack/unit-packages.sh).`: its control plane starts only for
# the tests that ask for it, and `make test-unit` runs with -short, under which every test
# of it that would start a process (envtest, kubectl) skips.
set -euo pipefail
cd "$(dirname "$0")/.."

spawning() {
	go list -test -f '{{if .ForTest}}{{else}}{{.ImportPath}} {{join .Deps " "}}{{end}}' ./... |
		awk '/ sigs\.k8s\.io\/controller-runtime\/pkg\/envtest( |$)|\/redistest( |$)/ { sub(/\.test$/, "", $1); print $1 }'
	go list -f '{{.ImportPath}} {{join .TestImports " "}} {{join .XTestImports " "}}' ./... |
		awk '/ os\/exec( |$)/ { print $1 }'
}

# lazy lists the envtest packages whose tests skip the control plane under -short.
lazy() {
	go list -f '{{.ImportPath}} {{.Dir}} {{join .TestGoFiles " "}}' ./... |
		while read -r pkg dir files; do
			for f in $files; do
				if grep -qxF '// test-unit: envtest starts lazily and -short skips it (read by hack/unit-packages.sh).' "$dir/$f"; then
					echo "$pkg"
					break
				fi
			done
		done
}

go list ./... | grep -vxF -f <(comm -23 <(spawning | sort -u) <(lazy | sort -u))
