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
	"sync"
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

// restartDelay is how long a supervised program that exited waits before it runs again, as
// systemd's RestartSec would.
const restartDelay = 2 * time.Second

// process is one program of the node, run in the node's namespaces. A supervised one is
// started again when it exits on its own, as a node's service manager restarts the kubelet
// (which exits when it finds no container runtime at start).
type process struct {
	name       string
	path       string
	args       []string
	log        string
	holder     int
	supervised bool

	mu       sync.Mutex
	cmd      *exec.Cmd
	stopping bool
	// done receives the program's last exit, once it will not be started again.
	done chan error
	// exitedOnce is closed when a run ends, for waits that watch it (replaced at each start).
	exitedOnce chan struct{}
}

// startProcess starts the program at path in the namespaces of the holder with pid holder
// (through nsenter), in the node's system cgroup, its output appended to logs/<name>.log. It
// is killed with its starter if that dies without stopping it.
func startProcess(holder int, logsDir, name, path string, supervised bool, args ...string) (*process, error) {
	p := &process{name: name, path: path, args: args, log: filepath.Join(logsDir, name+".log"),
		holder: holder, supervised: supervised, done: make(chan error, 1)}
	cmd, exited, err := p.run()
	if err != nil {
		return nil, err
	}
	go p.supervise(cmd, exited)
	return p, nil
}

// run starts one run of the program.
func (p *process) run() (*exec.Cmd, chan struct{}, error) {
	logFile, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("opening the %s log: %w", p.name, err)
	}
	defer logFile.Close()
	nsArgs := append([]string{"--target", strconv.Itoa(p.holder), "--net", "--mount", "--", p.path}, p.args...)
	cmd := exec.Command("nsenter", nsArgs...)
	// containerd finds its shim, and every program runc, iptables and nft, on PATH.
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(p.path)+":"+os.Getenv("PATH")+":/usr/local/sbin:/usr/sbin:/sbin")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("starting %s: %w", p.name, err)
	}
	if err := joinCgroup(systemCgroup, cmd.Process.Pid); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, nil, err
	}
	exited := make(chan struct{})
	p.mu.Lock()
	p.cmd, p.exitedOnce = cmd, exited
	p.mu.Unlock()
	return cmd, exited, nil
}

// supervise waits for each run to end and, for a supervised program not being stopped,
// starts the next.
func (p *process) supervise(cmd *exec.Cmd, exited chan struct{}) {
	for {
		err := cmd.Wait()
		close(exited)
		p.mu.Lock()
		again := p.supervised && !p.stopping
		p.mu.Unlock()
		if again {
			p.note("exited (%v); starting it again in %s", err, restartDelay)
			time.Sleep(restartDelay)
			p.mu.Lock()
			again = !p.stopping
			p.mu.Unlock()
		}
		if again {
			var runErr error
			if cmd, exited, runErr = p.run(); runErr == nil {
				continue
			}
			err = runErr
		}
		if err == nil {
			err = errors.New("exited")
		}
		p.done <- err
		return
	}
}

// note appends a line of the node's own to the program's log.
func (p *process) note(format string, args ...any) {
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintf(f, time.Now().Format("15:04:05.000")+" auth-operator-node: "+p.name+" "+format+"\n", args...)
}

// exited reports whether the program has ended for good, and how.
func (p *process) exited() (error, bool) {
	select {
	case err := <-p.done:
		p.done <- err
		return err, true
	default:
		return nil, false
	}
}

// signalAll marks the program as stopping and sends sig to its current run.
func (p *process) signalAll(sig syscall.Signal) {
	p.mu.Lock()
	p.stopping = true
	cmd := p.cmd
	p.mu.Unlock()
	if cmd != nil && cmd.Process != nil {
		_ = syscall.Kill(cmd.Process.Pid, sig)
	}
}

// stop sends SIGTERM and, after grace, SIGKILL, and waits for the program to end.
func (p *process) stop(grace time.Duration) error {
	if _, ended := p.exited(); ended {
		return nil
	}
	p.signalAll(syscall.SIGTERM)
	select {
	case err := <-p.done:
		p.done <- err
		return nil
	case <-time.After(grace):
	}
	p.signalAll(syscall.SIGKILL)
	err := <-p.done
	p.done <- err
	return fmt.Errorf("%s did not stop within %s and was killed", p.name, grace)
}

// kill ends the program at once, as a crash would, for good.
func (p *process) kill() {
	if _, ended := p.exited(); ended {
		return
	}
	p.signalAll(syscall.SIGKILL)
	err := <-p.done
	p.done <- err
}

// waitFor polls check every 100 ms until it returns nil, the program ends for good, ctx
// ends or timeout passes.
func (p *process) waitFor(ctx context.Context, what string, timeout time.Duration, check func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		if last = check(ctx); last == nil {
			return nil
		}
		if err, ended := p.exited(); ended {
			return fmt.Errorf("%s exited (%w) before %s: see %s", p.name, err, what, p.log)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %s not reached within %s (last: %w): see %s", p.name, what, timeout, last, p.log)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
