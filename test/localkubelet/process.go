package localkubelet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// containerRun is one container of a local pod and the state of its process.
type containerRun struct {
	name    string
	spec    corev1.Container
	launch  Launch
	ports   map[int32]int
	mounts  []PathMapping
	workDir string
	logPath string

	mu        sync.Mutex
	pid       int
	running   bool
	ready     bool
	restarts  int
	lastExit  string
	startedAt time.Time
	// last is how the previous run ended (zero before the first exit); completed is set
	// once an init container exited 0.
	last      exitRecord
	completed bool
}

// exitRecord is how a run of a container ended.
type exitRecord struct {
	code       int32
	reason     string
	startedAt  time.Time
	finishedAt time.Time
}

// snapshot copies what a status needs of the container.
func (c *containerRun) snapshot() containerSnapshot {
	c.mu.Lock()
	defer c.mu.Unlock()
	return containerSnapshot{
		name: c.name, image: c.spec.Image, running: c.running, ready: c.running && c.ready,
		restarts: c.restarts, startedAt: c.startedAt, last: c.last, completed: c.completed,
	}
}

func (c *containerRun) setRunning(pid int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pid, c.running, c.ready, c.startedAt = pid, true, false, time.Now()
}

// setExited records that the process ended; restarting says whether it will run again.
func (c *containerRun) setExited(err error, restarting bool) {
	reason := exitReason(err)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running {
		c.last = exitRecord{code: exitCode(err), reason: terminatedReason(err), startedAt: c.startedAt, finishedAt: time.Now()}
	}
	c.pid, c.running, c.ready, c.lastExit = 0, false, false, reason
	if restarting {
		c.restarts++
	}
}

// setReady records a readiness result and reports whether it changed.
func (c *containerRun) setReady(ready bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	changed := c.ready != ready
	c.ready = ready && c.running
	return changed
}

func (c *containerRun) isReady() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.running && c.ready
}

// processSupervisor runs the containers of pods as processes in their own process groups.
type processSupervisor struct {
	log            *slog.Logger
	output         io.Writer
	outputMu       *sync.Mutex
	initialBackoff time.Duration
	maxBackoff     time.Duration
	maxGrace       time.Duration
	// changed is called whenever a container starts, stops or changes readiness.
	changed func()
}

// start launches one run of the container and returns its command and a channel that
// yields the result of Wait.
func (s *processSupervisor) start(podName string, c *containerRun) (*exec.Cmd, <-chan error, error) {
	logFile, err := os.OpenFile(c.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("opening log file: %w", err)
	}
	cmd := exec.Command(c.launch.Path, c.launch.Args...)
	cmd.Dir = c.workDir
	for _, e := range c.launch.Env {
		cmd.Env = append(cmd.Env, e.Name+"="+e.Value)
	}
	var out io.Writer = logFile
	if s.output != nil {
		out = io.MultiWriter(logFile, &prefixWriter{prefix: podName + "/" + c.name + " | ", w: s.output, mu: s.outputMu})
	}
	cmd.Stdout, cmd.Stderr = out, out
	// Own process group, so a stop reaches children too; and killed with the runner if
	// the runner dies without stopping it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, nil, fmt.Errorf("starting %s: %w", c.launch.Path, err)
	}
	done := make(chan error, 1)
	go func() {
		err := cmd.Wait()
		logFile.Close()
		done <- err
	}()
	return cmd, done, nil
}

// terminate stops a process group the way the kubelet stops a container: SIGTERM, then
// SIGKILL after the grace period (read when the stop begins: a deletion may shorten it).
func (s *processSupervisor) terminate(cmd *exec.Cmd, done <-chan error, graceOf func() time.Duration) error {
	grace := graceOf()
	if grace > s.maxGrace {
		grace = s.maxGrace
	}
	pgid := cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case err := <-done:
		return err
	case <-time.After(grace):
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	return <-done
}

// supervise keeps a container running until ctx ends, restarting it when it exits (the
// pod's restartPolicy is Always) with a doubling back-off, and running its probes.
func (s *processSupervisor) supervise(ctx context.Context, podName string, grace func() time.Duration, c *containerRun) {
	backoff := time.Duration(0)
	for {
		cmd, done, err := s.start(podName, c)
		if err != nil {
			s.log.Error("container failed to start", "pod", podName, "container", c.name, "err", err)
			c.setExited(err, true)
		} else {
			c.setRunning(cmd.Process.Pid)
			s.changed()
			started := time.Now()
			probeCtx, stopProbes := context.WithCancel(ctx)
			go s.probe(probeCtx, podName, c, func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
			select {
			case err = <-done:
				stopProbes()
				c.setExited(err, true)
				s.log.Warn("container exited", "pod", podName, "container", c.name, "reason", exitReason(err))
				if time.Since(started) > 2*s.maxBackoff {
					backoff = 0
				}
			case <-ctx.Done():
				stopProbes()
				err := s.terminate(cmd, done, grace)
				c.setExited(err, false)
				s.changed()
				return
			}
		}
		s.changed()
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(max(2*backoff, s.initialBackoff), s.maxBackoff)
	}
}

// runToCompletion runs an init container until it exits 0, retrying failures with the
// back-off; it returns an error only when ctx ends first.
func (s *processSupervisor) runToCompletion(ctx context.Context, podName string, grace func() time.Duration, c *containerRun) error {
	backoff := s.initialBackoff
	for {
		cmd, done, err := s.start(podName, c)
		if err == nil {
			c.setRunning(cmd.Process.Pid)
			select {
			case err = <-done:
				c.setExited(err, err != nil)
				if err == nil {
					c.mu.Lock()
					c.completed = true
					c.mu.Unlock()
					s.changed()
					return nil
				}
			case <-ctx.Done():
				c.setExited(s.terminate(cmd, done, grace), false)
				return ctx.Err()
			}
		}
		s.log.Warn("init container failed", "pod", podName, "container", c.name, "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, s.maxBackoff)
	}
}

func exitReason(err error) string {
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		return "exited with code 0"
	case errors.As(err, &exitErr):
		if ws, ok := exitErr.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return fmt.Sprintf("killed by signal %d (%s)", int(ws.Signal()), ws.Signal())
		}
		return fmt.Sprintf("exited with code %d", exitErr.ExitCode())
	default:
		return err.Error()
	}
}

// exitCode is the exit code a container status shows: 128+signal for a killed process,
// as a container runtime reports it.
func exitCode(err error) int32 {
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exitErr):
		if ws, ok := exitErr.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int32(ws.Signal())
		}
		return int32(exitErr.ExitCode())
	default:
		return 128
	}
}

// terminatedReason is the reason of a terminated container state, as the kubelet gives it.
func terminatedReason(err error) string {
	if err == nil {
		return "Completed"
	}
	return "Error"
}

// prefixWriter writes each line it receives to w behind a prefix.
type prefixWriter struct {
	prefix string
	w      io.Writer
	mu     *sync.Mutex
	buf    []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.buf = append(p.buf, b...)
	for {
		i := indexNewline(p.buf)
		if i < 0 {
			break
		}
		p.mu.Lock()
		_, err := io.WriteString(p.w, p.prefix+string(p.buf[:i+1]))
		p.mu.Unlock()
		if err != nil {
			return len(b), err
		}
		p.buf = p.buf[i+1:]
	}
	return len(b), nil
}

func indexNewline(b []byte) int {
	for i, c := range b {
		if c == '\n' {
			return i
		}
	}
	return -1
}
