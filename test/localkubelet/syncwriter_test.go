package localkubelet

import (
	"io"
	"sync"
)

// syncWriter serialises writes from the runner's goroutines into a test buffer.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}
