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
	// Password is the managed Redis's password, also the Sentinels' own.
	Password string
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
	for _, addr := range p.Sentinels {
		wg.Go(func() {
			if primary, replicas, err := askSentinel(ctx, addr, p.MasterName, p.Password, timeout); err == nil {
				mu.Lock()
				sentinelAnswers = append(sentinelAnswers, primary)
				promotable[primary] = max(promotable[primary], replicas)
				mu.Unlock()
			}
		})
	}
	for i, addr := range p.Redis {
		wg.Go(func() {
			if role, err := askRole(ctx, addr, p.Password, timeout); err == nil && role == "master" {
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

// askSentinel asks a Sentinel for the primary it monitors and how many of its replicas it
// could promote: up and linked as far as the Sentinel knows (flags "slave" and nothing else)
// and not excluded from promotion (replica priority 0).
func askSentinel(ctx context.Context, addr, masterName, password string, timeout time.Duration) (primary string, promotable int, err error) {
	c := redis.NewSentinelClient(&redis.Options{Addr: addr, Password: password, DialTimeout: timeout, ReadTimeout: timeout, WriteTimeout: timeout, MaxRetries: -1})
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

func askRole(ctx context.Context, addr, password string, timeout time.Duration) (string, error) {
	c := redis.NewClient(&redis.Options{Addr: addr, Password: password, DialTimeout: timeout, ReadTimeout: timeout, WriteTimeout: timeout, MaxRetries: -1, DisableIdentity: true})
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
