package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// runCommand runs a short command and returns its error with its output.
func runCommand(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// process is one program of the node, run in the node's namespaces.
type process struct {
	name string
	path string
	args []string
	log  string
	cmd  *exec.Cmd
	done chan error
}

// startProcess starts the program at path in the namespaces of the holder with pid holder
// (through nsenter), in the node's system cgroup, its output appended to logs/<name>.log. It
// is killed with its starter if that dies without stopping it.
func startProcess(holder int, logsDir, name, path string, args ...string) (*process, error) {
	p := &process{name: name, path: path, args: args, log: filepath.Join(logsDir, name+".log")}
	return p, p.start(holder)
}

func (p *process) start(holder int) error {
	logFile, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("opening the %s log: %w", p.name, err)
	}
	nsArgs := append([]string{"--target", strconv.Itoa(holder), "--net", "--mount", "--", p.path}, p.args...)
	cmd := exec.Command("nsenter", nsArgs...)
	// containerd finds its shim, and every program runc, iptables and nft, on PATH.
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(p.path)+":"+os.Getenv("PATH")+":/usr/local/sbin:/usr/sbin:/sbin")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("starting %s: %w", p.name, err)
	}
	if err := joinCgroup(systemCgroup, cmd.Process.Pid); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logFile.Close()
		return err
	}
	p.cmd = cmd
	p.done = make(chan error, 1)
	go func() {
		err := cmd.Wait()
		logFile.Close()
		p.done <- err
	}()
	return nil
}

// exited reports whether the process has ended, and how.
func (p *process) exited() (error, bool) {
	select {
	case err := <-p.done:
		p.done <- err
		if err == nil {
			err = errors.New("exited")
		}
		return err, true
	default:
		return nil, false
	}
}

// stop sends SIGTERM and, after grace, SIGKILL, and waits for the process to end.
func (p *process) stop(grace time.Duration) error {
	if p.cmd == nil {
		return nil
	}
	if _, ended := p.exited(); ended {
		return nil
	}
	_ = syscall.Kill(p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
	}
	_ = syscall.Kill(p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
	return fmt.Errorf("%s did not stop within %s and was killed", p.name, grace)
}

// kill ends the process at once, as a crash would.
func (p *process) kill() {
	if p.cmd == nil {
		return
	}
	if _, ended := p.exited(); ended {
		return
	}
	_ = syscall.Kill(p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// waitFor polls check every interval until it returns nil, the process exits, ctx ends
// or timeout passes.
func (p *process) waitFor(ctx context.Context, what string, timeout time.Duration, check func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		if last = check(ctx); last == nil {
			return nil
		}
		if err, ended := p.exited(); ended {
			return fmt.Errorf("%s exited (%v) before %s: see %s", p.name, err, what, p.log)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %s not reached within %s (last: %v): see %s", p.name, what, timeout, last, p.log)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
