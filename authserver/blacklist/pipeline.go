package blacklist

import (
	"context"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// maxBatch bounds how many commands one pipeline round trip carries.
const maxBatch = 256

// pipelineWorkers is how many round trips may be in flight at once.
const pipelineWorkers = 2

// pipeline coalesces the commands of concurrent requests into Redis pipelines: each
// worker takes the first waiting command, then every other one already queued, and
// sends them in one round trip. Under light load a batch is one command and adds
// only a channel hand-off; under heavy load it saves a round trip, two system calls
// and a scheduler wake-up per command on both sides.
type pipeline struct {
	client  redis.UniversalClient
	timeout time.Duration
	queue   chan *pending
	pool    sync.Pool
}

// pending is one command waiting for its batch.
type pending struct {
	cmd  redis.Cmder
	done chan struct{}
}

func newPipeline(client redis.UniversalClient, timeout time.Duration) *pipeline {
	p := &pipeline{client: client, timeout: timeout, queue: make(chan *pending, maxBatch*pipelineWorkers)}
	p.pool.New = func() any { return &pending{done: make(chan struct{}, 1)} }
	for range pipelineWorkers {
		go p.work()
	}
	return p
}

// do runs cmd in the next batch and returns its error. A cancelled ctx stops the wait
// for a place in the queue; once queued, the command finishes within the client's
// timeouts.
func (p *pipeline) do(ctx context.Context, cmd redis.Cmder) error {
	w := p.pool.Get().(*pending)
	w.cmd = cmd
	select {
	case p.queue <- w:
	case <-ctx.Done():
		p.pool.Put(w)
		return ctx.Err()
	}
	<-w.done
	w.cmd = nil
	p.pool.Put(w)
	return cmd.Err()
}

func (p *pipeline) work() {
	batch := make([]*pending, 0, maxBatch)
	for first := range p.queue {
		batch = append(batch[:0], first)
	drain:
		for len(batch) < maxBatch {
			select {
			case w := <-p.queue:
				batch = append(batch, w)
			default:
				break drain
			}
		}
		p.exec(batch)
	}
}

// exec sends one batch. Each command carries its own result or error; a connection
// failure sets the same error on every command of the batch.
func (p *pipeline) exec(batch []*pending) {
	ctx, cancel := context.WithTimeout(context.Background(), p.timeout)
	defer cancel()
	if len(batch) == 1 {
		_ = p.client.Process(ctx, batch[0].cmd)
	} else {
		pipe := p.client.Pipeline()
		for _, w := range batch {
			_ = pipe.Process(ctx, w.cmd)
		}
		_, _ = pipe.Exec(ctx)
	}
	for _, w := range batch {
		w.done <- struct{}{}
	}
}
