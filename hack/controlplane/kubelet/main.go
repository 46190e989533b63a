// Command kubelet is the upstream node agent, built from the Go module proxy; the local node
// of `make dev` and the e2e runs it against containerd.
package main

import (
	"context"
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kubelet/app"
)

func main() {
	os.Exit(cli.Run(app.NewKubeletCommand(context.Background())))
}
