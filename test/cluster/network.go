package cluster

import (
	"fmt"
	"net"
	"strconv"
)

// connectNode links the host to the node's network namespace (the holder's, pid holder)
// with a veth pair, and routes the Service and pod ranges over it, so that the host reaches
// the API server at NodeIP and every ClusterIP and pod address, as on a machine of the
// cluster. Everything goes with the namespace: the veth's two ends and the routes through it.
func connectNode(holder int) error {
	ns := strconv.Itoa(holder)
	inNode := func(args ...string) []string { return append([]string{"--target", ns, "--net", "--"}, args...) }
	steps := [][]string{
		{"ip", "link", "add", hostVethName, "type", "veth", "peer", "name", nodeVethName, "netns", ns},
		{"ip", "addr", "add", hostVethIP + "/" + strconv.Itoa(vethPrefix), "dev", hostVethName},
		{"ip", "link", "set", hostVethName, "up"},
		append([]string{"nsenter"}, inNode("ip", "addr", "add", NodeIP+"/"+strconv.Itoa(vethPrefix), "dev", nodeVethName)...),
		append([]string{"nsenter"}, inNode("ip", "link", "set", nodeVethName, "up")...),
		append([]string{"nsenter"}, inNode("ip", "route", "add", "default", "via", hostVethIP)...),
		{"ip", "route", "add", ServiceCIDR, "via", NodeIP, "dev", hostVethName},
		{"ip", "route", "add", PodCIDR, "via", NodeIP, "dev", hostVethName},
	}
	for _, s := range steps {
		if err := runCommand(s[0], s[1:]...); err != nil {
			return fmt.Errorf("connecting the host to the node: %w", err)
		}
	}
	return nil
}

// hostLinkExists reports whether the host's end of a node's veth exists: a node runs, or
// one whose processes are still being killed.
func hostLinkExists() bool {
	_, err := net.InterfaceByName(hostVethName)
	return err == nil
}
