package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/hiringo/auth-operator/internal/redisconf"
	"github.com/hiringo/auth-operator/internal/redistopology"
)

// redisTopologyConfig is what `authserver redis-topology` is told.
type redisTopologyConfig struct {
	role            string
	self            string
	redisAddrs      []string
	sentinelAddrs   []string
	masterName      string
	passwordFile    string
	redisUsername   string
	sentinelUser    string
	sentinelPWFile  string
	usersFile       string
	recordFile      string
	dataDir         string
	electingFile    string
	electWait       time.Duration
	electListen     string
	base            string
	out             string
	quorum          int
	downAfter       time.Duration
	failoverTimeout time.Duration
	timeout         time.Duration
	wait            time.Duration
	awaitFailover   time.Duration
	install         string
	exec            bool
}

// newRedisTopologyCommand is the init step of a replicated managed Redis's pods: it asks
// the Sentinels (else the Redis pods) who the primary is and writes the pod's own writable
// redis.conf or sentinel.conf. It is a Go command rather than a shell script so the image
// needs no shell. The Redis container also runs it, copied there by the init step
// (--install), before every start of redis-server (--exec): a container the kubelet
// restarts decides again whom it follows.
func newRedisTopologyCommand() *cobra.Command {
	c := &redisTopologyConfig{}
	cmd := &cobra.Command{
		Use:   "redis-topology",
		Short: "Write the redis.conf or sentinel.conf of a replicated managed Redis pod, following the primary the Sentinels name",
		Args:  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 && !c.exec {
				return fmt.Errorf("unexpected arguments %v: a command to run follows --exec --", args)
			}
			if c.exec && len(args) == 0 {
				return errors.New("--exec needs the command to run after --")
			}
			if err := runRedisTopology(cmd, c); err != nil {
				return err
			}
			if c.exec {
				return execCommand(args)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&c.role, "role", "redis", "redis or sentinel: which configuration to write")
	f.StringVar(&c.self, "self", "", "host:port of this pod as the others reach it (its stable DNS name), announced to them")
	f.StringSliceVar(&c.redisAddrs, "redis-addrs", nil, "host:port of every Redis pod in ordinal order; the first is the primary of a first start")
	f.StringSliceVar(&c.sentinelAddrs, "sentinel-addrs", nil, "host:port of every Sentinel")
	f.StringVar(&c.masterName, "master-name", "", "the Sentinel master name")
	f.StringVar(&c.passwordFile, "password-file", "", "file holding this pod's own password: redis role, Redis's (masterauth); sentinel role, the Sentinels' (also their Redis user's)")
	f.StringVar(&c.redisUsername, "redis-username", "", "ACL user to ask the Redis pods as; empty for the default user")
	f.StringVar(&c.sentinelUser, "sentinel-username", "", "ACL user to ask the Sentinels as; empty for the default user")
	f.StringVar(&c.sentinelPWFile, "sentinel-password-file", "", "file holding the password to ask the Sentinels with; empty for --password-file's")
	f.StringVar(&c.usersFile, "users-file", "", "sentinel role: ACL user lines to add to sentinel.conf (the Sentinels' clients)")
	f.StringVar(&c.base, "base", "", "redis role: the redis.conf to start from")
	f.StringVar(&c.out, "out", "", "file to write")
	f.IntVar(&c.quorum, "quorum", 2, "Sentinels that must agree the primary is down (a Redis waits for a failover only when that many answer)")
	f.DurationVar(&c.downAfter, "down-after", redisconf.DownAfter, "sentinel role: how long the primary may not answer before it is down")
	f.DurationVar(&c.failoverTimeout, "failover-timeout", redisconf.FailoverTimeout, "sentinel role: failover timeout")
	f.DurationVar(&c.timeout, "timeout", 2*time.Second, "how long to wait for each peer's answer")
	f.DurationVar(&c.wait, "wait", 5*time.Minute, "sentinel role: how long to keep asking while no peer answers (a Sentinel must not monitor a primary that does not exist yet) before monitoring the first Redis pod; the Redis pods elect theirs meanwhile")
	f.DurationVar(&c.awaitFailover, "await-failover", 3*redisconf.FailoverTimeout, "redis role: how long a Redis the Sentinels still name the primary waits for them to promote a replica they could promote, before it starts as the primary anyway")
	f.StringVar(&c.recordFile, "record-file", "", "redis role: the replication offset recorded on the volume (redis-probe); with it, when nobody names a primary, the pods elect the one whose data goes furthest rather than pod 0")
	f.StringVar(&c.dataDir, "data-dir", "", "redis role: the data directory, to tell the others whether it holds data")
	f.StringVar(&c.electingFile, "electing-file", "", "redis role: file held while electing (redis-probe then passes, so the next pod starts)")
	f.StringVar(&c.electListen, "elect-listen", "", "redis role: address to tell the others this pod's record on while electing; empty for the port of --self on every interface")
	f.DurationVar(&c.electWait, "elect-wait", 2*time.Minute, "redis role: how long to wait for every Redis pod before electing among those that told a record")
	f.StringVar(&c.install, "install", "", "copy this program to the given path, for the Redis container to run before redis-server")
	f.BoolVar(&c.exec, "exec", false, "after writing the configuration, run the command that follows -- in place of this program")
	return cmd
}

// elect runs this pod's part in electing the primary after a restart of every Redis pod.
func elect(cmd *cobra.Command, c *redisTopologyConfig, password, selfAddr string, selfPort int) (string, error) {
	if c.electingFile != "" {
		if err := os.WriteFile(c.electingFile, nil, 0o600); err != nil {
			return "", fmt.Errorf("marking the election: %w", err)
		}
		defer os.Remove(c.electingFile)
	}
	own := redistopology.Own{Record: redistopology.ReadRecord(c.recordFile), HasData: c.dataDir != "" && redistopology.HasData(c.dataDir)}
	out := cmd.OutOrStdout()
	listen := c.electListen
	if listen == "" {
		listen = ":" + strconv.Itoa(selfPort)
	}
	primary, err := redistopology.Election{
		Self: selfAddr, Members: c.redisAddrs, Own: own, Listen: listen,
		Username: c.redisUsername, Password: password, Wait: c.electWait, Interval: 500 * time.Millisecond, Timeout: c.timeout,
		Log: func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) },
	}.Run(cmd.Context())
	if err != nil {
		return "", fmt.Errorf("electing the primary: %w", err)
	}
	fmt.Fprintf(out, "redis %s: elected primary %s\n", selfAddr, primary)
	return primary, nil
}

// readPassword reads a mounted password file, without its trailing newline.
func readPassword(path string) (string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading the password: %w", err)
	}
	return strings.TrimRight(string(raw), "\r\n"), nil
}

// execCommand replaces this program with args (a program found on PATH and its arguments).
func execCommand(args []string) error {
	path, err := exec.LookPath(args[0])
	if err != nil {
		return err
	}
	return syscall.Exec(path, args, os.Environ())
}

// installSelf copies this program to path, whole through a rename, executable: streamed,
// since the init container's memory limit is smaller than the program.
func installSelf(path string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	f, err := os.Open(self)
	if err != nil {
		return err
	}
	defer f.Close()
	return writeFileAtomic(path, f, 0o755)
}

// writeFileAtomic writes what r holds to path through a temporary file and a rename: a
// reader never sees half a file.
func writeFileAtomic(path string, r io.Reader, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, r); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

func runRedisTopology(cmd *cobra.Command, c *redisTopologyConfig) error {
	if c.role != "redis" && c.role != "sentinel" {
		return fmt.Errorf("--role %q: use redis or sentinel", c.role)
	}
	if c.self == "" || c.out == "" || c.masterName == "" || c.passwordFile == "" || len(c.redisAddrs) == 0 {
		return errors.New("--self, --out, --master-name, --password-file and --redis-addrs are required")
	}
	selfHost, selfPortText, err := net.SplitHostPort(c.self)
	if err != nil {
		return fmt.Errorf("--self %q: %w", c.self, err)
	}
	selfPort, err := strconv.Atoi(selfPortText)
	if err != nil {
		return fmt.Errorf("--self %q: the port is not a number", c.self)
	}
	password, err := readPassword(c.passwordFile)
	if err != nil {
		return err
	}
	selfAddr := c.self
	peers := redistopology.Peers{MasterName: c.masterName, RedisUsername: c.redisUsername, Password: password, SentinelUsername: c.sentinelUser, Timeout: c.timeout}
	if c.sentinelPWFile != "" {
		if peers.SentinelPassword, err = readPassword(c.sentinelPWFile); err != nil {
			return err
		}
	}
	for _, a := range c.sentinelAddrs {
		if a != selfAddr {
			peers.Sentinels = append(peers.Sentinels, a)
		}
	}
	for _, a := range c.redisAddrs {
		if a != selfAddr {
			peers.Redis = append(peers.Redis, a)
		}
	}
	observed := redistopology.Observe(cmd.Context(), peers)
	// A Redis pod that hears nobody starts anyway (pod 0 on a first start must); a Sentinel
	// waits for a Redis to answer, as one monitoring an address that does not resolve yet
	// refuses to start.
	for deadline := time.Now().Add(c.wait); c.role == "sentinel" && len(observed.SentinelAnswers) == 0 && len(observed.Masters) == 0 && time.Now().Before(deadline); {
		select {
		case <-cmd.Context().Done():
			return cmd.Context().Err()
		case <-time.After(time.Second):
		}
		observed = redistopology.Observe(cmd.Context(), peers)
	}
	primary := redistopology.Primary(observed, c.redisAddrs)
	if c.role == "redis" && c.recordFile != "" && !redistopology.Heard(observed, c.redisAddrs) {
		if primary, err = elect(cmd, c, password, selfAddr, selfPort); err != nil {
			return err
		}
	}
	// A Redis the Sentinels still name the primary was down (it is starting): when they can
	// promote a replica they will, and it must not take writes meanwhile.
	if c.role == "redis" && redistopology.AwaitFailover(observed, c.redisAddrs, selfAddr, c.quorum) {
		fmt.Fprintf(cmd.OutOrStdout(), "redis %s: the Sentinels still name it the primary and can promote a replica: waiting for the failover (at most %s)\n", selfAddr, c.awaitFailover)
		for deadline := time.Now().Add(c.awaitFailover); redistopology.AwaitFailover(observed, c.redisAddrs, selfAddr, c.quorum) && time.Now().Before(deadline); {
			select {
			case <-cmd.Context().Done():
				return cmd.Context().Err()
			case <-time.After(250 * time.Millisecond):
			}
			observed = redistopology.Observe(cmd.Context(), peers)
		}
		primary = redistopology.Primary(observed, c.redisAddrs)
	}

	var conf string
	if c.role == "redis" {
		base, err := os.ReadFile(c.base)
		if err != nil {
			return fmt.Errorf("reading %s: %w", c.base, err)
		}
		follow := primary
		if primary == selfAddr {
			follow = ""
		}
		if conf, err = redisconf.RenderReplica(string(base), redisconf.ReplicaSettings{
			Password: password, AnnounceHost: selfHost, AnnouncePort: selfPort, Primary: follow,
		}); err != nil {
			return fmt.Errorf("rendering redis.conf: %w", err)
		}
	} else {
		var users []byte
		if c.usersFile != "" {
			if users, err = os.ReadFile(c.usersFile); err != nil {
				return fmt.Errorf("reading the ACL users: %w", err)
			}
		}
		if conf, err = redisconf.RenderSentinel(redisconf.SentinelSettings{
			MasterName: c.masterName, Primary: primary, Quorum: c.quorum, Password: password, RedisUsername: c.redisUsername,
			Users: string(users), AnnounceHost: selfHost, Port: selfPort, DownAfter: c.downAfter, FailoverTimeout: c.failoverTimeout,
		}); err != nil {
			return fmt.Errorf("rendering sentinel.conf: %w", err)
		}
	}
	// Written whole through a rename: a Redis restarting beside a crashed init never reads
	// half a file.
	if err := writeFileAtomic(c.out, strings.NewReader(conf), 0o600); err != nil {
		return err
	}
	if c.install != "" {
		if err := installSelf(c.install); err != nil {
			return fmt.Errorf("installing into %s: %w", c.install, err)
		}
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%s %s follows primary %s (%d Sentinels answered, %d Redis masters seen)\n",
		c.role, selfAddr, primary, len(observed.SentinelAnswers), len(observed.Masters))
	return nil
}
