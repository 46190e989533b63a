package localkubelet

import (
	"fmt"
	"path"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Launch is a container's process as the runner is about to start it: the program and
// arguments after every rewrite, and its environment in order.
type Launch struct {
	Path string
	Args []string
	Env  []EnvVar
}

// EnvVar is one resolved environment variable.
type EnvVar struct {
	Name  string
	Value string
}

// SetEnv sets name to value, replacing an existing entry in place or appending one.
func (l *Launch) SetEnv(name, value string) {
	for i := range l.Env {
		if l.Env[i].Name == name {
			l.Env[i].Value = value
			return
		}
	}
	l.Env = append(l.Env, EnvVar{Name: name, Value: value})
}

func (l *Launch) hasEnv(name string) bool {
	for _, e := range l.Env {
		if e.Name == name {
			return true
		}
	}
	return false
}

// Program is the local stand-in for a container image.
type Program struct {
	// Path is the executable that replaces the container's entrypoint (the first word of
	// its command).
	Path string
	// Bind makes the launch listen on loopback: ports maps each containerPort of the
	// container to the local port the runner picked for it.
	Bind func(l *Launch, c corev1.Container, ports map[int32]int) error
	// KubeconfigEnv, when set, is the variable through which the program takes a
	// kubeconfig file. A local process cannot read the service-account token at the fixed
	// path rest.InClusterConfig reads, so the runner hands it a kubeconfig that points at
	// the materialised token and CA instead.
	KubeconfigEnv string
}

// ImageResolver picks the local program for a container image and the container's
// command (nil when the pod spec leaves the image's entrypoint in place).
type ImageResolver func(image string, command []string) (Program, error)

// DefaultImages maps the operator's image running "/authserver" to the locally built
// auth-server binary, and any "redis" image to the redis-server found at redisPath (its
// "redis-sentinel" entrypoint to redis-server in Sentinel mode).
func DefaultImages(operatorImage, authserverPath, redisPath string) ImageResolver {
	return func(image string, command []string) (Program, error) {
		entry := ""
		if len(command) > 0 {
			entry = path.Base(command[0])
		}
		switch {
		case image == operatorImage && entry == "authserver":
			return AuthServerProgram(authserverPath), nil
		case imageRepository(image) == "redis" && (entry == "redis-server" || entry == ""):
			return RedisServerProgram(redisPath), nil
		case imageRepository(image) == "redis" && entry == "redis-sentinel":
			return RedisSentinelProgram(redisPath), nil
		default:
			return Program{}, fmt.Errorf("image %q with entrypoint %q has no local program", image, entry)
		}
	}
}

// imageRepository returns the last path element of an image reference without its tag
// or digest: "docker.io/library/redis:7.4-alpine" gives "redis".
func imageRepository(image string) string {
	if i := strings.IndexByte(image, '@'); i >= 0 {
		image = image[:i]
	}
	base := path.Base(image)
	if i := strings.IndexByte(base, ':'); i >= 0 {
		base = base[:i]
	}
	return base
}

// AuthServerProgram runs the auth server at binaryPath on the loopback ports given to its
// container ports: the one named "admin" through AUTHSERVER_ADMIN_LISTEN (and any
// --admin-listen flag), the other one (named "http", or the only port) through
// AUTHSERVER_LISTEN (and any --listen flag).
func AuthServerProgram(binaryPath string) Program {
	return Program{Path: binaryPath, KubeconfigEnv: "AUTHSERVER_KUBECONFIG", Bind: func(l *Launch, c corev1.Container, ports map[int32]int) error {
		names := map[int32]string{}
		for _, cp := range c.Ports {
			names[cp.ContainerPort] = cp.Name
		}
		var api, admin []int
		for port, local := range ports {
			if names[port] == "admin" {
				admin = append(admin, local)
			} else {
				api = append(api, local)
			}
		}
		if len(api) != 1 || len(admin) > 1 {
			return fmt.Errorf("the auth server listens on one API port and at most one port named admin, the container declares %d and %d", len(api), len(admin))
		}
		addr := "127.0.0.1:" + strconv.Itoa(api[0])
		l.SetEnv("AUTHSERVER_LISTEN", addr)
		rewriteFlag(l.Args, "--listen", addr)
		if len(admin) == 1 {
			addr := "127.0.0.1:" + strconv.Itoa(admin[0])
			l.SetEnv("AUTHSERVER_ADMIN_LISTEN", addr)
			rewriteFlag(l.Args, "--admin-listen", addr)
		}
		return nil
	}}
}

// RedisServerProgram runs redis-server at binaryPath on the loopback port given to its
// container port: the "--port" argument is rewritten and "--bind 127.0.0.1" added.
func RedisServerProgram(binaryPath string) Program {
	return Program{Path: binaryPath, Bind: func(l *Launch, _ corev1.Container, ports map[int32]int) error {
		local, err := singlePort(ports)
		if err != nil {
			return err
		}
		if !rewriteFlag(l.Args, "--port", strconv.Itoa(local)) {
			l.Args = append(l.Args, "--port", strconv.Itoa(local))
		}
		if !rewriteFlag(l.Args, "--bind", "127.0.0.1") {
			l.Args = append(l.Args, "--bind", "127.0.0.1")
		}
		return nil
	}}
}

// RedisSentinelProgram runs the image's redis-sentinel as redis-server at binaryPath in
// Sentinel mode ("--sentinel", what the redis-sentinel link does), on its loopback port
// like RedisServerProgram.
func RedisSentinelProgram(binaryPath string) Program {
	server := RedisServerProgram(binaryPath)
	return Program{Path: binaryPath, Bind: func(l *Launch, c corev1.Container, ports map[int32]int) error {
		if err := server.Bind(l, c, ports); err != nil {
			return err
		}
		l.Args = append(l.Args, "--sentinel")
		return nil
	}}
}

func singlePort(ports map[int32]int) (int, error) {
	if len(ports) != 1 {
		return 0, fmt.Errorf("container declares %d ports, the local program listens on exactly one", len(ports))
	}
	for _, local := range ports {
		return local, nil
	}
	return 0, nil
}

// rewriteFlag sets the value of every "--flag value" and "--flag=value" in args and
// reports whether there was one.
func rewriteFlag(args []string, flag, value string) bool {
	found := false
	for i := 0; i < len(args); i++ {
		switch {
		case args[i] == flag && i+1 < len(args):
			args[i+1] = value
			found = true
			i++
		case strings.HasPrefix(args[i], flag+"="):
			args[i] = flag + "=" + value
			found = true
		}
	}
	return found
}
