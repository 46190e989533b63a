package redistopology

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sync"
	"time"
)

// Election is a Redis pod's part in choosing the primary when no Sentinel names one and no
// Redis pod runs as the primary: a restart of every pod, or the first start. Until the
// primary is decided, the pod's start gate serves its Record on the Redis port (its Redis
// does not run yet) and asks the others for theirs.
type Election struct {
	// Self is the pod's host:port, one of Members (every Redis pod, in ordinal order).
	Self    string
	Members []string
	// Own is what the pod tells the others.
	Own Own
	// Listen is the address to serve Own on: the Redis port.
	Listen string
	// Username and Password log in to the others, and Password is required of them.
	Username, Password string
	// Wait bounds how long every member is waited for; after it, the members that answered
	// with a record decide (a member that does not answer may hold the newest data, so
	// without a record among the others nothing is decided and the wait goes on).
	Wait time.Duration
	// Interval is the pause between rounds of questions, Timeout each question's bound.
	Interval, Timeout time.Duration
	// Log reports progress, once per change of what the pod heard.
	Log func(format string, args ...any)
}

// Run serves Own and asks the others until the primary is decided, and returns it. A member
// whose Redis already runs settles it: the primary if it is one, or the member it replicates
// (it decided with what this pod would hear). Otherwise Elect decides on the records.
func (e Election) Run(ctx context.Context) (string, error) {
	ln, err := net.Listen("tcp", e.Listen)
	if err != nil {
		return "", fmt.Errorf("serving this pod's record on %s: %w", e.Listen, err)
	}
	served := make(chan struct{})
	go func() { defer close(served); serveRecord(ln, e.Own, e.Password) }()
	defer func() { ln.Close(); <-served }()

	deadline := time.Now().Add(e.Wait)
	last := ""
	for {
		candidates, settled := e.round(ctx)
		if settled != "" {
			return settled, nil
		}
		if primary, ok := Elect(candidates, time.Now().After(deadline)); ok {
			return primary, nil
		}
		if heard := describe(candidates); heard != last && e.Log != nil {
			e.Log("electing the primary after a restart of every Redis pod: %s", heard)
			last = heard
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(e.Interval):
		}
	}
}

// round asks every other member once; settled is the primary when a running Redis settles it.
func (e Election) round(ctx context.Context) (candidates []Candidate, settled string) {
	answers := make([]peerAnswer, len(e.Members))
	var wg sync.WaitGroup
	for i, m := range e.Members {
		if m == e.Self {
			continue
		}
		wg.Go(func() { answers[i] = askPeer(ctx, m, e.Username, e.Password, e.Timeout) })
	}
	wg.Wait()
	candidates = make([]Candidate, len(e.Members))
	for i, m := range e.Members {
		c := Candidate{Addr: m}
		switch a := answers[i]; {
		case m == e.Self:
			c.Answered, c.Record, c.HasData = true, e.Own.Record, e.Own.HasData
		case a.kind == peerLiveMaster:
			return nil, m
		case a.kind == peerLiveReplica && slices.Contains(e.Members, a.follows):
			return nil, a.follows
		case a.kind == peerElecting:
			c.Answered, c.Record, c.HasData = true, a.own.Record, a.own.HasData
		}
		candidates[i] = c
	}
	return candidates, ""
}

// describe says what each candidate told, for the log.
func describe(candidates []Candidate) string {
	s := ""
	for i, c := range candidates {
		if i > 0 {
			s += ", "
		}
		switch {
		case !c.Answered:
			s += c.Addr + " silent"
		case c.Record == nil && c.HasData:
			s += c.Addr + " data without a record"
		case c.Record == nil:
			s += c.Addr + " no data"
		default:
			s += fmt.Sprintf("%s at offset %d of %s (%s)", c.Addr, c.Record.Offset, c.Record.ReplID[:8], c.Record.Time.UTC().Format(time.RFC3339))
		}
	}
	return s
}
