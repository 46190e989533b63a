// Command kube-proxy is the upstream Service proxy (iptables or nftables mode), built from the
// Go module proxy; the local node of `make dev` and the e2e runs it so that ClusterIP Services
// work from pods and from the host.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-proxy/app"
)

func main() {
	os.Exit(cli.Run(app.NewProxyCommand()))
}
