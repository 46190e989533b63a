package imagebuild

import (
	"fmt"
	"runtime"
	"strconv"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// RedisUID is the user of the Redis image, the one the operator runs Redis pods as.
const RedisUID = 999

// redisPrograms are the host's programs (Debian's redis-server, redis-sentinel and
// redis-tools packages, and dash) that the Redis image carries: the servers, the client the
// exec probes run, and the shell that runs them.
var redisPrograms = []string{"/usr/bin/redis-server", "/usr/bin/redis-sentinel", "/usr/bin/redis-cli", "/usr/bin/redis-check-aof", "/bin/sh"}

// Redis builds an image of the host's Debian Redis for the host's platform: redis-server
// (the entrypoint, as in the official image), redis-sentinel, redis-cli and /bin/sh with the
// shared libraries they need, run by the unprivileged user 999 in /data.
func Redis(labels map[string]string) (v1.Image, error) {
	lists := [][]Entry{
		MergedUsr(),
		Users("redis", RedisUID, "/data"),
		{Dir("/data", 0o755, RedisUID, RedisUID), Dir("/tmp", 0o1777, 0, 0)},
	}
	for _, p := range redisPrograms {
		entries, err := HostProgram(p)
		if err != nil {
			return nil, fmt.Errorf("redis image: %w (install Debian's redis-server, redis-sentinel and redis-tools)", err)
		}
		lists = append(lists, entries)
	}
	entries, err := Merge(lists...)
	if err != nil {
		return nil, fmt.Errorf("redis image: %w", err)
	}
	layer, err := Layer(entries)
	if err != nil {
		return nil, fmt.Errorf("redis image: %w", err)
	}
	uid := strconv.Itoa(RedisUID)
	return Image(Config{
		OS: "linux", Architecture: runtime.GOARCH,
		User:         uid + ":" + uid,
		Entrypoint:   []string{"redis-server"},
		Env:          []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
		WorkingDir:   "/data",
		ExposedPorts: []string{"6379/tcp"},
		Labels:       labels,
	}, layer)
}
