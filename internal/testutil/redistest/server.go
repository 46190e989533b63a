package redistest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Binary is the redis-server executable the helper runs; REDIS_SERVER overrides it.
func Binary() string {
	if b := os.Getenv("REDIS_SERVER"); b != "" {
		return b
	}
	return "redis-server"
}

// Server is one redis-server process bound to 127.0.0.1, owned by a test.
type Server struct {
	// Addr is the host:port the server listens on; it stays the same across restarts.
	Addr string

	args    []string
	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	logPath string
	// busPort is a Cluster node's cluster bus port.
	busPort int
}

// Options change how the server is started.
type Options struct {
	// AppendOnly turns on AOF persistence with fsync on every write, for durability tests.
	AppendOnly bool
	// Password, when set, is required by the server (requirepass).
	Password string
	// ReplicaOf, when set, is the host:port of a primary this server replicates
	// (without a password).
	ReplicaOf string
	// ConfigFile, when set, is a redis.conf the server reads first; the helper's own
	// settings (address, files, persistence) override it.
	ConfigFile string
	// Cluster runs the server as a one-node Redis Cluster owning every slot: it
	// refuses a multi-key command whose keys hash to different slots (CROSSSLOT), as
	// any cluster does.
	Cluster bool

	// clusterNode runs a Cluster node that owns no slot yet (StartCluster assigns them).
	clusterNode bool
}

// Start runs a redis-server on a free loopback port and stops it when the test ends.
// The test fails at once when redis-server is missing or does not come up; under -short
// it is skipped, as the unit tier starts no process.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	skipShort(t)
	s, err := New(t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// skipShort skips t under -short, the tier of tests that start no process.
func skipShort(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts redis-server: not in -short")
	}
}

// New runs a redis-server on a free loopback port with its files in dir, for use from
// TestMain where one server serves a whole test package. The caller must Stop it.
func New(dir string, opts Options) (*Server, error) {
	bin, err := exec.LookPath(Binary())
	if err != nil {
		return nil, fmt.Errorf("redis-server is needed by these tests and was not found on PATH (install the Debian package redis-server, or run make redis-server): %w", err)
	}
	port, err := freePort()
	if err != nil {
		return nil, fmt.Errorf("finding a free loopback port: %w", err)
	}
	s := &Server{
		Addr:    net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		logPath: filepath.Join(dir, "redis.log"),
	}
	s.args = []string{bin}
	if opts.ConfigFile != "" {
		s.args = append(s.args, opts.ConfigFile)
	}
	s.args = append(s.args,
		"--bind", "127.0.0.1",
		"--port", strconv.Itoa(port),
		"--dir", dir,
		"--save", "",
		"--logfile", s.logPath,
		"--protected-mode", "yes",
		// A replica started by a test synchronises at once instead of after 5s.
		"--repl-diskless-sync-delay", "0",
	)
	if opts.AppendOnly {
		s.args = append(s.args, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		s.args = append(s.args, "--appendonly", "no")
	}
	if opts.Password != "" {
		s.args = append(s.args, "--requirepass", opts.Password)
	}
	if opts.ReplicaOf != "" {
		host, port, err := net.SplitHostPort(opts.ReplicaOf)
		if err != nil {
			return nil, fmt.Errorf("replica of %q: %w", opts.ReplicaOf, err)
		}
		s.args = append(s.args, "--replicaof", host, port)
	}
	if opts.Cluster || opts.clusterNode {
		// The cluster bus gets its own free port: the default, port+10000, may be
		// taken or past 65535.
		bus, err := freePort()
		for err == nil && bus == port {
			bus, err = freePort()
		}
		if err != nil {
			return nil, fmt.Errorf("finding a free loopback port: %w", err)
		}
		s.busPort = bus
		s.args = append(s.args, "--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(dir, "nodes.conf"),
			"--cluster-port", strconv.Itoa(bus))
	}
	if err := s.start(); err != nil {
		return nil, err
	}
	if opts.Cluster {
		if err := s.ownAllSlots(); err != nil {
			s.Stop()
			return nil, err
		}
	}
	return s, nil
}

// ownAllSlots assigns every slot to the server and waits for the cluster to be ok.
func (s *Server) ownAllSlots() error {
	if _, err := command(s.Addr, "CLUSTER", "ADDSLOTSRANGE", "0", "16383"); err != nil {
		return fmt.Errorf("assigning cluster slots: %w", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if info, err := command(s.Addr, "CLUSTER", "INFO"); err == nil && strings.Contains(info, "cluster_state:ok") {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("one-node cluster on %s not ok within 10s", s.Addr)
}

func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cmd := exec.Command(s.args[0], s.args[1:]...)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", filepath.Base(s.args[0]), err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	s.cmd, s.exited = cmd, exited
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("%s exited at start: %s", filepath.Base(s.args[0]), s.tailLog())
		default:
		}
		if pingOK(s.Addr) {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	<-exited
	return fmt.Errorf("%s did not answer on %s within 10s: %s", filepath.Base(s.args[0]), s.Addr, s.tailLog())
}

// Pid is the process id of the running server, or 0 while it is stopped.
func (s *Server) Pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Kill stops the server abruptly (SIGKILL), as a crash or network cut would.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}

// Restart starts the server again on the same address and data directory after Kill.
func (s *Server) Restart() error { return s.start() }

// Stop ends the server; it is safe to call more than once.
func (s *Server) Stop() { s.Kill() }

func (s *Server) tailLog() string {
	data, err := os.ReadFile(s.logPath)
	if err != nil {
		return "(no log)"
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	return strings.Join(lines, " | ")
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// pingOK reports whether a server at addr answers PING without authentication errors
// other than NOAUTH, which also proves it is up.
func pingOK(addr string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return false
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		return false
	}
	return strings.HasPrefix(line, "+PONG") || strings.HasPrefix(line, "-NOAUTH")
}

// command sends one command to addr without authentication and returns its simple or
// bulk string reply; an error reply is an error.
func command(addr string, args ...string) (string, error) {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	req := "*" + strconv.Itoa(len(args)) + "\r\n"
	for _, a := range args {
		req += "$" + strconv.Itoa(len(a)) + "\r\n" + a + "\r\n"
	}
	if _, err := conn.Write([]byte(req)); err != nil {
		return "", err
	}
	r := bufio.NewReader(conn)
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	switch {
	case strings.HasPrefix(line, "-"):
		return "", errors.New(line[1:])
	case strings.HasPrefix(line, "$"):
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return "", fmt.Errorf("unexpected reply %q", line)
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	}
	return strings.TrimPrefix(line, "+"), nil
}
