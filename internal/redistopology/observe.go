package redistopology

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Peers are the pods a starting pod asks.
type Peers struct {
	// Sentinels are the host:port of every Sentinel.
	Sentinels []string
	// Redis are the host:port of every Redis pod other than the starting one, in ordinal
	// order.
	Redis []string
	// MasterName is the Sentinel master name.
	MasterName string
	// RedisUsername and Password log in to the Redis pods ("": the default user).
	RedisUsername, Password string
	// SentinelUsername and SentinelPassword log in to the Sentinels. Without a
	// SentinelPassword, or when a Sentinel refuses them (one that predates the ACL users),
	// Password and the default user do.
	SentinelUsername, SentinelPassword string
	// Timeout bounds each question; a peer that does not answer in time is left out.
	Timeout time.Duration
}

// Observe asks every peer at once and returns what those that answered said. A pod that
// is down or not resolvable yet (its DNS record appears when it is scheduled) is simply
// not counted.
func Observe(ctx context.Context, p Peers) Observation {
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	sentinelAnswers := make([]string, 0, len(p.Sentinels))
	promotable := map[string]int{}
	masters := make([]bool, len(p.Redis))
	logins := []login{{"", p.Password}}
	if p.SentinelPassword != "" {
		logins = append([]login{{p.SentinelUsername, p.SentinelPassword}}, logins...)
	}
	for _, addr := range p.Sentinels {
		wg.Go(func() {
			if primary, replicas, err := askSentinelAs(ctx, addr, p.MasterName, logins, timeout); err == nil {
				mu.Lock()
				sentinelAnswers = append(sentinelAnswers, primary)
				promotable[primary] = max(promotable[primary], replicas)
				mu.Unlock()
			}
		})
	}
	for i, addr := range p.Redis {
		wg.Go(func() {
			if role, err := askRole(ctx, addr, p.RedisUsername, p.Password, timeout); err == nil && role == "master" {
				mu.Lock()
				masters[i] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	o := Observation{SentinelAnswers: sentinelAnswers, Promotable: promotable}
	for i, m := range masters {
		if m {
			o.Masters = append(o.Masters, p.Redis[i])
		}
	}
	return o
}

// login is a user name and password.
type login struct{ username, password string }

// askSentinelAs asks a Sentinel as the first of logins it accepts.
func askSentinelAs(ctx context.Context, addr, masterName string, logins []login, timeout time.Duration) (primary string, promotable int, err error) {
	for _, l := range logins {
		primary, promotable, err = askSentinel(ctx, addr, masterName, l.username, l.password, timeout)
		if !isAuthError(err) {
			break
		}
	}
	return primary, promotable, err
}

// isAuthError reports whether err is a server's refusal of a login or of its rights.
func isAuthError(err error) bool {
	return redis.HasErrorPrefix(err, "WRONGPASS") || redis.HasErrorPrefix(err, "NOAUTH") || redis.HasErrorPrefix(err, "NOPERM")
}

// askSentinel asks a Sentinel for the primary it monitors and how many of its replicas it
// could promote: up and linked as far as the Sentinel knows (flags "slave" and nothing else)
// and not excluded from promotion (replica priority 0).
func askSentinel(ctx context.Context, addr, masterName, username, password string, timeout time.Duration) (primary string, promotable int, err error) {
	c := redis.NewSentinelClient(&redis.Options{Addr: addr, Username: username, Password: password, DialTimeout: timeout, ReadTimeout: timeout, WriteTimeout: timeout, MaxRetries: -1})
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	hp, err := c.GetMasterAddrByName(ctx, masterName).Result()
	if err != nil {
		return "", 0, err
	}
	if len(hp) != 2 || hp[0] == "" {
		return "", 0, errors.New("no primary named")
	}
	replicas, err := c.Replicas(ctx, masterName).Result()
	if err != nil {
		return "", 0, err
	}
	for _, r := range replicas {
		if r["flags"] == "slave" && r["slave-priority"] != "0" {
			promotable++
		}
	}
	return net.JoinHostPort(hp[0], hp[1]), promotable, nil
}

func askRole(ctx context.Context, addr, username, password string, timeout time.Duration) (string, error) {
	c := redis.NewClient(&redis.Options{Addr: addr, Username: username, Password: password, DialTimeout: timeout, ReadTimeout: timeout, WriteTimeout: timeout, MaxRetries: -1, DisableIdentity: true})
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	reply, err := c.Do(ctx, "ROLE").Slice()
	if err != nil {
		return "", err
	}
	if len(reply) == 0 {
		return "", errors.New("empty ROLE reply")
	}
	role, _ := reply[0].(string)
	return strings.ToLower(role), nil
}
