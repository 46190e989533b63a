package localkubelet

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// PathMapping ties an absolute path inside the container to the local path that stands
// for it.
type PathMapping struct {
	ContainerPath string
	LocalPath     string
}

// RemapPaths rewrites every occurrence of a mapped container path in s (a command word,
// an argument or an env value) to its local path. A path matches only as a whole path
// element sequence: "/data" is rewritten in "/data", "/data/x" and "--dir=/data", not in
// "/database". Longer container paths win over their prefixes.
func RemapPaths(s string, mappings []PathMapping) string {
	if len(mappings) == 0 || !strings.Contains(s, "/") {
		return s
	}
	sorted := append([]PathMapping(nil), mappings...)
	sort.SliceStable(sorted, func(i, j int) bool {
		return len(sorted[i].ContainerPath) > len(sorted[j].ContainerPath)
	})
	var b strings.Builder
	for i := 0; i < len(s); {
		m, ok := matchPathAt(s, i, sorted)
		if !ok {
			b.WriteByte(s[i])
			i++
			continue
		}
		b.WriteString(m.LocalPath)
		i += len(m.ContainerPath)
	}
	return b.String()
}

func matchPathAt(s string, i int, sorted []PathMapping) (PathMapping, bool) {
	if s[i] != '/' || (i > 0 && !isPathStartBoundary(s[i-1])) {
		return PathMapping{}, false
	}
	for _, m := range sorted {
		cp := strings.TrimSuffix(m.ContainerPath, "/")
		if cp == "" || !strings.HasPrefix(s[i:], cp) {
			continue
		}
		end := i + len(cp)
		if end == len(s) || isPathEndBoundary(s[end]) {
			return PathMapping{ContainerPath: cp, LocalPath: strings.TrimSuffix(m.LocalPath, "/")}, true
		}
	}
	return PathMapping{}, false
}

func isPathStartBoundary(c byte) bool {
	return strings.IndexByte(" \t=:,;\"'(", c) >= 0
}

func isPathEndBoundary(c byte) bool {
	return strings.IndexByte("/ \t,:;\"')", c) >= 0
}

// hostPortPattern finds "host:port" pairs whose host looks like a DNS name.
var hostPortPattern = regexp.MustCompile(`(^|[^A-Za-z0-9.\-])([a-z0-9]([a-z0-9.\-]*[a-z0-9])?):([0-9]{1,5})\b`)

// ServiceRef names a port of a Service as a pod would address it, or, with Pod set, a
// port of one pod by its DNS name under a headless Service ("POD.SERVICE.NS.svc", the
// name a StatefulSet's pods get).
type ServiceRef struct {
	Namespace string
	Name      string
	Port      int32
	// Pod is the pod's hostname (spec.hostname) under the Service (its spec.subdomain).
	Pod string
}

// ServiceResolver returns the local address that stands for a Service port. known is
// false when no such Service exists.
type ServiceResolver func(ref ServiceRef) (addr string, known bool)

// RewriteServiceAddrs replaces the in-cluster addresses of Services in s with their local
// addresses. It understands "svc:port", "svc.ns:port", "svc.ns.svc:port" and
// "svc.ns.svc.cluster.local:port", and a pod's "pod.svc.ns.svc:port" (with or without
// ".cluster.local"); namespace defaults to the pod's. A bare "svc:port"
// that names no known Service is an error, because inside a cluster it could only mean a
// Service of the pod's namespace that does not exist yet; dotted names that are not
// Services are left alone (they are external hosts).
func RewriteServiceAddrs(s, namespace string, resolve ServiceResolver) (string, error) {
	var firstErr error
	out := hostPortPattern.ReplaceAllStringFunc(s, func(match string) string {
		sub := hostPortPattern.FindStringSubmatch(match)
		prefix, host, portText := sub[1], sub[2], sub[4]
		port, err := strconv.ParseInt(portText, 10, 32)
		if err != nil || port <= 0 || port > 65535 {
			return match
		}
		ref, ok := serviceRefForHost(host, namespace)
		if !ok {
			return match
		}
		ref.Port = int32(port)
		if addr, known := resolve(ref); known {
			return prefix + addr
		}
		if !strings.Contains(host, ".") && firstErr == nil {
			firstErr = fmt.Errorf("service %s/%s port %d is not known", ref.Namespace, ref.Name, ref.Port)
		}
		return match
	})
	return out, firstErr
}

// serviceRefForHost reads a Service name and namespace from the forms of its DNS name.
func serviceRefForHost(host, namespace string) (ServiceRef, bool) {
	if !strings.Contains(host, ".") {
		if isIPv4Like(host) || host == "localhost" {
			return ServiceRef{}, false
		}
		return ServiceRef{Namespace: namespace, Name: host}, true
	}
	host = strings.TrimSuffix(host, ".cluster.local")
	host, qualified := strings.CutSuffix(host, ".svc")
	parts := strings.Split(host, ".")
	if qualified && len(parts) == 3 {
		return ServiceRef{Pod: parts[0], Name: parts[1], Namespace: parts[2]}, true
	}
	if len(parts) != 2 || isIPv4Like(host) {
		return ServiceRef{}, false
	}
	return ServiceRef{Namespace: parts[1], Name: parts[0]}, true
}

func isIPv4Like(s string) bool {
	return strings.Trim(s, "0123456789.") == ""
}
