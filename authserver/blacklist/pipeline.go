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

// pipeline coalesces the commands of concurrent requests into Redis pipelines: each
// worker takes the first waiting command, then every other one already queued, and
// sends them in one round trip. Under light load a batch is one command and adds
// only a channel hand-off; under heavy load it saves a round trip, two system calls
// and a scheduler wake-up per command on both sides (BenchmarkAdd against
// BenchmarkAddUnbatched).
//
// Reads and writes queue apart and are sent by their own workers: when replica
// acknowledgement is required, a batch of writes ends with one WAIT on the same
// connection, which covers every write of the batch, and no read ever waits for it
// (a lagging replica must not slow verification).
type pipeline struct {
	client  redis.UniversalClient
	timeout time.Duration
	acks    ReplicaAcks
	traced  bool
	reads   chan *pending
	writes  chan *pending
	stop    chan struct{}
	close   sync.Once
	workers sync.WaitGroup
	pool    sync.Pool
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
	cmd  redis.Cmder
	done chan struct{}
	// span is the span of the request that sent cmd, kept only when traced.
	span trace.SpanContext
}

func newPipeline(client redis.UniversalClient, timeout time.Duration, acks ReplicaAcks, traced bool) *pipeline {
	p := &pipeline{
		client:  client,
		timeout: timeout,
		acks:    acks,
		traced:  traced,
		reads:   make(chan *pending, maxBatch*pipelineWorkers),
		writes:  make(chan *pending, maxBatch*pipelineWorkers),
		stop:    make(chan struct{}),
	}
	p.pool.New = func() any { return &pending{done: make(chan struct{}, 1)} }
	p.workers.Add(2 * pipelineWorkers)
	for range pipelineWorkers {
		go p.work(p.reads, false)
		go p.work(p.writes, acks.Min > 0)
	}
	return p
}

// do runs cmd in the next batch and returns its error; write marks a command whose
// effect replicas must acknowledge. A cancelled ctx stops the wait for a place in the
// queue; once queued, the command finishes within the client's timeouts. After
// shutdown, do fails with errClosed instead of waiting.
func (p *pipeline) do(ctx context.Context, cmd redis.Cmder, write bool) error {
	w := p.pool.Get().(*pending)
	w.cmd = cmd
	if p.traced {
		w.span = trace.SpanContextFromContext(ctx)
	}
	queue := p.reads
	if write {
		queue = p.writes
	}
	select {
	case queue <- w:
	case <-ctx.Done():
		p.pool.Put(w)
		return ctx.Err()
	case <-p.stop:
		p.pool.Put(w)
		return errClosed
	}
	select {
	case <-w.done:
	case <-p.stop:
		select {
		case <-w.done:
		default:
			// A worker may still answer w; it is left to the garbage collector
			// rather than reused with a stale signal.
			return errClosed
		}
	}
	w.cmd, w.span = nil, trace.SpanContext{}
	p.pool.Put(w)
	return cmd.Err()
}

// shutdown stops the workers once their current batch is sent and waits for them.
func (p *pipeline) shutdown() {
	p.close.Do(func() { close(p.stop) })
	p.workers.Wait()
}

// work sends the batches of one queue; wait ends each with a WAIT.
func (p *pipeline) work(queue chan *pending, wait bool) {
	defer p.workers.Done()
	batch := make([]*pending, 0, maxBatch)
	for {
		select {
		case <-p.stop:
			return
		case first := <-queue:
			batch = append(batch[:0], first)
		}
	drain:
		for len(batch) < maxBatch {
			select {
			case w := <-queue:
				batch = append(batch, w)
			default:
				break drain
			}
		}
		p.exec(batch, wait)
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
	} else {
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
	for _, w := range batch {
		w.done <- struct{}{}
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
