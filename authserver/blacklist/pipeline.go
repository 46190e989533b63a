package blacklist

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"
)

// maxBatch bounds how many commands one pipeline round trip carries.
const maxBatch = 256

// pipelineWorkers is how many round trips of each kind (reads, writes) may be in
// flight at once.
const pipelineWorkers = 2

// errClosed is the error of a command sent to, or still waiting in, a closed store.
var errClosed = errors.New("blacklist store closed")

// ErrReplicasBehind is wrapped in the error of a write that fewer replicas than
// required acknowledged in time. The write is on the primary but may be lost if the
// primary fails before a replica has it.
var ErrReplicasBehind = errors.New("too few Redis replicas acknowledged the write")

// pipeline coalesces the commands of concurrent requests into Redis pipelines. A
// caller that finds fewer than pipelineWorkers round trips of its kind in flight sends
// its command itself (no hand-off to another goroutine: under light load a check
// costs no scheduler switch); otherwise it queues it. A sender whose round trip ends
// hands the queue to its first waiting caller, who sends every queued command (up to
// maxBatch) in one round trip. Under heavy load this saves a round trip, two system
// calls and a scheduler wake-up per command on both sides (BenchmarkAdd against
// BenchmarkAddUnbatched).
//
// Reads and writes queue apart: when replica acknowledgement is required, a batch of
// writes ends with one WAIT on the same connection, which covers every write of the
// batch, and no read ever waits for it (a lagging replica must not slow verification).
type pipeline struct {
	client  redis.UniversalClient
	timeout time.Duration
	acks    ReplicaAcks
	traced  bool
	reads   lane
	writes  lane
	pool    sync.Pool
}

// lane is the queue and the senders of one kind of command.
type lane struct {
	// wait ends each batch with a WAIT for replica acknowledgements.
	wait bool
	mu   sync.Mutex
	// senders is how many round trips are in flight; queued waits for one to end.
	senders int
	queue   []*pending
	closed  bool
	// idle is signalled when senders drops to 0 after close.
	idle *sync.Cond
}

// ReplicaAcks asks that a write be acknowledged by replicas before it counts.
type ReplicaAcks struct {
	// Min is how many replicas must acknowledge each write; 0 turns the wait off.
	Min int
	// Timeout bounds the wait. It must stay below the client's read timeout.
	Timeout time.Duration
}

// pending is one command waiting for its batch.
type pending struct {
	cmd redis.Cmder
	// done receives signalDone when cmd has its reply (or error), or signalLead
	// when its caller is to send the queue itself.
	done chan signal
	// span is the span of the request that sent cmd, kept only when traced.
	span trace.SpanContext
}

// signal tells a queued caller what became of its command.
type signal uint8

const (
	signalDone signal = iota
	signalLead
)

func newPipeline(client redis.UniversalClient, timeout time.Duration, acks ReplicaAcks, traced bool) *pipeline {
	p := &pipeline{client: client, timeout: timeout, acks: acks, traced: traced}
	p.writes.wait = acks.Min > 0
	p.reads.idle = sync.NewCond(&p.reads.mu)
	p.writes.idle = sync.NewCond(&p.writes.mu)
	p.pool.New = func() any { return &pending{done: make(chan signal, 1)} }
	return p
}

// do runs cmd in the next batch and returns its error; write marks a command whose
// effect replicas must acknowledge. A cancelled ctx stops the wait for a place in a
// batch; once sent, the command finishes within the client's timeouts. After
// shutdown, do fails with errClosed instead of waiting.
func (p *pipeline) do(ctx context.Context, cmd redis.Cmder, write bool) error {
	l := &p.reads
	if write {
		l = &p.writes
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	w := p.pool.Get().(*pending)
	w.cmd = cmd
	if p.traced {
		w.span = trace.SpanContextFromContext(ctx)
	}
	l.mu.Lock()
	switch {
	case l.closed:
		l.mu.Unlock()
		p.release(w)
		return errClosed
	case l.senders < pipelineWorkers:
		l.senders++
		l.mu.Unlock()
		one := [1]*pending{w}
		p.send(l, one[:], w)
	default:
		l.queue = append(l.queue, w)
		l.mu.Unlock()
		p.await(ctx, l, w)
	}
	return cmd.Err()
}

// await waits for w's reply, sending the queue when handed the lead.
func (p *pipeline) await(ctx context.Context, l *lane, w *pending) {
	var s signal
	select {
	case s = <-w.done:
	case <-ctx.Done():
		l.mu.Lock()
		if removed := l.remove(w); removed {
			l.mu.Unlock()
			w.cmd.SetErr(ctx.Err())
			p.release(w)
			return
		}
		l.mu.Unlock()
		// A sender took w already: its reply (or the lead) is on its way.
		s = <-w.done
	}
	if s == signalLead {
		l.mu.Lock()
		batch := l.take(w)
		l.mu.Unlock()
		p.send(l, batch, w)
		return
	}
	p.release(w)
}

// send sends batch (which holds own, the caller's command), answers the other
// commands of it, then hands the lane to the first queued caller or, with nothing
// queued, gives its place up. The caller counts as one of l.senders.
func (p *pipeline) send(l *lane, batch []*pending, own *pending) {
	p.exec(batch, l.wait)
	for _, w := range batch {
		if w != own {
			w.done <- signalDone
		}
	}
	p.release(own)
	l.mu.Lock()
	if len(l.queue) > 0 && !l.closed {
		// Out of the queue now, so that a cancellation of its context cannot strand
		// the lead.
		next := l.queue[0]
		n := copy(l.queue, l.queue[1:])
		l.queue[n] = nil
		l.queue = l.queue[:n]
		l.mu.Unlock()
		// next keeps this sender's place; it takes the queue itself when it runs.
		next.done <- signalLead
		return
	}
	l.senders--
	if l.closed && l.senders == 0 {
		l.idle.Broadcast()
	}
	l.mu.Unlock()
}

// take is the batch of the caller that was handed the lead: own, then up to
// maxBatch-1 queued commands, oldest first. It runs under l.mu.
func (l *lane) take(own *pending) []*pending {
	n := min(len(l.queue), maxBatch-1)
	batch := make([]*pending, 1+n)
	batch[0] = own
	copy(batch[1:], l.queue)
	rest := copy(l.queue, l.queue[n:])
	clear(l.queue[rest:])
	l.queue = l.queue[:rest]
	return batch
}

// remove drops w from the queue, reporting whether it was there; it runs under l.mu.
func (l *lane) remove(w *pending) bool {
	for i, q := range l.queue {
		if q == w {
			n := copy(l.queue[i:], l.queue[i+1:])
			l.queue[i+n] = nil
			l.queue = l.queue[:i+n]
			return true
		}
	}
	return false
}

// release returns w to the pool once nothing will signal it any more.
func (p *pipeline) release(w *pending) {
	w.cmd, w.span = nil, trace.SpanContext{}
	p.pool.Put(w)
}

// shutdown fails every queued command with errClosed, waits for the round trips in
// flight and makes later calls fail at once.
func (p *pipeline) shutdown() {
	for _, l := range []*lane{&p.reads, &p.writes} {
		l.mu.Lock()
		l.closed = true
		queued := l.queue
		l.queue = nil
		for _, w := range queued {
			w.cmd.SetErr(errClosed)
			w.done <- signalDone
		}
		for l.senders > 0 {
			l.idle.Wait()
		}
		l.mu.Unlock()
	}
}

// exec sends one batch. Each command carries its own result or error; a connection
// failure sets the same error on every command of the batch.
func (p *pipeline) exec(batch []*pending, wait bool) {
	base := context.Background()
	if p.traced {
		// One round trip serves several requests; it shows in the trace of the first.
		base = trace.ContextWithSpanContext(base, batch[0].span)
	}
	ctx, cancel := context.WithTimeout(base, p.timeout)
	defer cancel()
	if len(batch) == 1 && !wait {
		_ = p.client.Process(ctx, batch[0].cmd)
		return
	}
	pipe := p.client.Pipeline()
	for _, w := range batch {
		_ = pipe.Process(ctx, w.cmd)
	}
	var waitCmd *redis.IntCmd
	if wait {
		waitCmd = redis.NewIntCmd(ctx, "wait", p.acks.Min, p.acks.Timeout.Milliseconds())
		_ = pipe.Process(ctx, waitCmd)
	}
	_, _ = pipe.Exec(ctx)
	if wait {
		failUnacknowledged(batch, p.acks.check(waitCmd))
	}
}

// check turns the reply of WAIT into an error when fewer than Min replicas
// acknowledged.
func (a ReplicaAcks) check(cmd *redis.IntCmd) error {
	n, err := cmd.Result()
	switch {
	case err != nil:
		return fmt.Errorf("waiting for %d Redis replicas: %w", a.Min, err)
	case n < int64(a.Min):
		return fmt.Errorf("%w: %d of %d within %s", ErrReplicasBehind, n, a.Min, a.Timeout)
	}
	return nil
}

// failUnacknowledged sets err on every write of batch that succeeded on the primary.
func failUnacknowledged(batch []*pending, err error) {
	if err == nil {
		return
	}
	for _, w := range batch {
		if w.cmd.Err() == nil {
			w.cmd.SetErr(err)
		}
	}
}
