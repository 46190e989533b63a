package localkubelet

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// probe runs a container's startup, readiness and liveness probes until ctx ends. A
// container without a readiness probe is ready once it runs; a failed startup or liveness
// probe kills the process, which the supervisor then restarts.
func (s *processSupervisor) probe(ctx context.Context, podName string, c *containerRun, kill func()) {
	if p := c.spec.StartupProbe; p != nil {
		if !s.probeLoop(ctx, c, p, func(ok bool, successes, failures int) bool {
			if failures >= int(threshold(p.FailureThreshold, 3)) {
				s.log.Warn("startup probe failed, killing container", "pod", podName, "container", c.name)
				kill()
				return true
			}
			return ok
		}) {
			return
		}
	}
	if p := c.spec.LivenessProbe; p != nil {
		go s.probeLoop(ctx, c, p, func(ok bool, successes, failures int) bool {
			if failures >= int(threshold(p.FailureThreshold, 3)) {
				s.log.Warn("liveness probe failed, killing container", "pod", podName, "container", c.name)
				kill()
				return true
			}
			return false
		})
	}
	p := c.spec.ReadinessProbe
	if p == nil {
		if c.setReady(true) {
			s.changed()
		}
		return
	}
	s.probeLoop(ctx, c, p, func(ok bool, successes, failures int) bool {
		switch {
		case ok && successes >= int(threshold(p.SuccessThreshold, 1)):
			if c.setReady(true) {
				s.changed()
			}
		case !ok && failures >= int(threshold(p.FailureThreshold, 3)):
			if c.setReady(false) {
				s.changed()
			}
		}
		return false
	})
}

// probeLoop runs p every period after its initial delay and hands each result, with the
// counts of consecutive successes and failures, to handle; it stops when handle returns
// true (and then returns true) or when ctx ends (false).
func (s *processSupervisor) probeLoop(ctx context.Context, c *containerRun, p *corev1.Probe, handle func(ok bool, successes, failures int) bool) bool {
	period := time.Duration(threshold(p.PeriodSeconds, 10)) * time.Second
	timeout := time.Duration(threshold(p.TimeoutSeconds, 1)) * time.Second
	wait := time.Duration(p.InitialDelaySeconds) * time.Second
	successes, failures := 0, 0
	for {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(wait):
		}
		wait = period
		err := runProbe(ctx, c, p.ProbeHandler, timeout)
		if err == nil {
			successes, failures = successes+1, 0
		} else {
			successes, failures = 0, failures+1
		}
		if ctx.Err() != nil {
			return false
		}
		if handle(err == nil, successes, failures) {
			return true
		}
	}
}

func threshold(v, def int32) int32 {
	if v <= 0 {
		return def
	}
	return v
}

// runProbe performs one probe against the container's local ports.
func runProbe(ctx context.Context, c *containerRun, h corev1.ProbeHandler, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	switch {
	case h.HTTPGet != nil:
		port, err := localPort(c, h.HTTPGet.Port)
		if err != nil {
			return err
		}
		scheme := strings.ToLower(string(h.HTTPGet.Scheme))
		if scheme == "" {
			scheme = "http"
		}
		path := h.HTTPGet.Path
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+net.JoinHostPort("127.0.0.1", strconv.Itoa(port))+path, nil)
		if err != nil {
			return fmt.Errorf("building probe request: %w", err)
		}
		for _, hdr := range h.HTTPGet.HTTPHeaders {
			req.Header.Add(hdr.Name, hdr.Value)
		}
		// The kubelet does not verify a probe's TLS certificate.
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // as the kubelet, see above
		defer client.CloseIdleConnections()
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("probe request: %w", err)
		}
		resp.Body.Close()
		if resp.StatusCode < 200 || resp.StatusCode >= 400 {
			return fmt.Errorf("probe answered %d", resp.StatusCode)
		}
		return nil
	case h.TCPSocket != nil:
		port, err := localPort(c, h.TCPSocket.Port)
		if err != nil {
			return err
		}
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			return fmt.Errorf("probe dial: %w", err)
		}
		return conn.Close()
	case h.Exec != nil:
		if len(h.Exec.Command) == 0 {
			return fmt.Errorf("exec probe has no command")
		}
		argv := make([]string, len(h.Exec.Command))
		for i, a := range h.Exec.Command {
			argv[i] = RemapPaths(a, c.mounts)
		}
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		cmd.Dir = c.workDir
		for _, e := range c.launch.Env {
			cmd.Env = append(cmd.Env, e.Name+"="+e.Value)
		}
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("exec probe: %w", err)
		}
		return nil
	default:
		return fmt.Errorf("only httpGet, tcpSocket and exec probes are emulated")
	}
}

// localPort finds the loopback port that stands for a probe's port, by number or name.
func localPort(c *containerRun, port intstr.IntOrString) (int, error) {
	if port.Type == intstr.String {
		for _, p := range c.spec.Ports {
			if p.Name == port.StrVal {
				if local, ok := c.ports[p.ContainerPort]; ok {
					return local, nil
				}
			}
		}
		return 0, fmt.Errorf("container %s declares no port named %q", c.name, port.StrVal)
	}
	if local, ok := c.ports[port.IntVal]; ok {
		return local, nil
	}
	return 0, fmt.Errorf("container %s declares no port %d", c.name, port.IntVal)
}
