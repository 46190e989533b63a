// Command kube-controller-manager is the upstream controller manager (Deployment, ReplicaSet,
// StatefulSet, EndpointSlice, garbage collector, disruption, service-account and root-CA
// controllers), built from the Go module proxy.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-controller-manager/app"
)

func main() {
	os.Exit(cli.Run(app.NewControllerManagerCommand()))
}
