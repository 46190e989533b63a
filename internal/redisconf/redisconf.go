package redisconf

import (
	"errors"
	"fmt"
	"strconv"

	"k8s.io/apimachinery/pkg/api/resource"
)

// Password bounds. A generated password is 64 hex characters.
const (
	minPasswordLength = 16
	maxPasswordLength = 512
)

// MaxMemoryPercent is the share of the container's memory limit that Redis may use for
// data. The rest is for what maxmemory does not count: the AOF rewrite's forked child
// (copy-on-write pages under a write storm), client and AOF buffers, fragmentation.
const MaxMemoryPercent = 60

// ErrInvalidPassword says a password cannot be written into redis.conf safely.
var ErrInvalidPassword = errors.New("invalid Redis password")

// ValidatePassword accepts 16 to 512 printable ASCII characters other than space, quotes
// and backslash: the characters redis.conf's argument splitter takes literally. Anything
// else could end the directive early or start another one (a newline followed by
// "replicaof …"). The error never contains the password.
func ValidatePassword(p string) error {
	if len(p) < minPasswordLength || len(p) > maxPasswordLength {
		return fmt.Errorf("%w: it has %d characters, it must have %d to %d", ErrInvalidPassword, len(p), minPasswordLength, maxPasswordLength)
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c <= ' ' || c > '~' || c == '"' || c == '\'' || c == '\\' {
			return fmt.Errorf("%w: character %d is not allowed; use printable ASCII without spaces, quotes or backslashes", ErrInvalidPassword, i+1)
		}
	}
	return nil
}

// MaxMemory is the maxmemory for a container memory limit: MaxMemoryPercent of it, in
// bytes. Zero (no limit) leaves Redis without one.
func MaxMemory(limit *resource.Quantity) int64 {
	if limit == nil || limit.IsZero() {
		return 0
	}
	return limit.Value() / 100 * MaxMemoryPercent
}

// Render is the redis.conf of the managed Redis. Eviction is off: a blacklist entry that
// Redis dropped under memory pressure would make a logged-out token valid again. With a
// maxmemory, a full Redis refuses writes (logout answers 503) instead of growing until the
// kernel kills it, which would end in a crash loop, as replaying the AOF needs the same
// memory again.
func Render(password string, maxMemory int64) (string, error) {
	if err := ValidatePassword(password); err != nil {
		return "", err
	}
	conf := "requirepass " + password + "\nmaxmemory-policy noeviction\n"
	if maxMemory > 0 {
		conf += "maxmemory " + strconv.FormatInt(maxMemory, 10) + "\n"
	}
	return conf, nil
}
