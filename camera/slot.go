package camera

import (
	"context"
	"sync"
	"time"

	"gocv.io/x/gocv"
)

// frame is one captured image. Whoever holds a frame owns its Mat: the
// capture loop until put, the slot until taken, analysis until recycled.
type frame struct {
	mat  gocv.Mat
	seq  uint64
	time time.Time // when it was read
}

// slot hands frames from capture to analysis. It holds at most one frame:
// in lossy mode a newer frame replaces one analysis has not taken (and the
// replaced one is counted as dropped); in lossless mode put waits for room.
// A one-frame spare bin lets capture reuse Mats instead of allocating.
type slot struct {
	mu      sync.Mutex
	pending *frame
	spare   *frame
	dropped uint64
	ready   chan struct{} // signalled when a frame is put
	room    chan struct{} // signalled when a frame is taken
}

func newSlot() *slot {
	return &slot{ready: make(chan struct{}, 1), room: make(chan struct{}, 1)}
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// put gives f to the slot. Lossy, it never waits. Lossless, it waits until
// the slot is empty or ctx ends; when ctx ends f is recycled and ctx's error returned.
func (s *slot) put(ctx context.Context, f *frame, lossless bool) error {
	for {
		s.mu.Lock()
		if s.pending == nil || !lossless {
			old := s.pending
			s.pending = f
			if old != nil {
				s.dropped++
				s.recycleLocked(old)
			}
			s.mu.Unlock()
			signal(s.ready)
			return nil
		}
		s.mu.Unlock()
		select {
		case <-s.room:
		case <-ctx.Done():
			s.recycle(f)
			return ctx.Err()
		}
	}
}

// take returns the pending frame, or nil. The caller owns it and hands it
// back with recycle.
func (s *slot) take() *frame {
	s.mu.Lock()
	f := s.pending
	s.pending = nil
	s.mu.Unlock()
	if f != nil {
		signal(s.room)
	}
	return f
}

// recycle returns a frame the caller owns: kept as the spare or closed.
func (s *slot) recycle(f *frame) {
	s.mu.Lock()
	s.recycleLocked(f)
	s.mu.Unlock()
}

func (s *slot) recycleLocked(f *frame) {
	if s.spare == nil {
		s.spare = f
		return
	}
	f.mat.Close()
}

// fresh returns a frame to read into: the spare if any, else a new Mat.
func (s *slot) fresh() *frame {
	s.mu.Lock()
	f := s.spare
	s.spare = nil
	s.mu.Unlock()
	if f == nil {
		return &frame{mat: gocv.NewMat()}
	}
	return f
}

func (s *slot) droppedCount() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dropped
}

// holding reports how many frames the slot holds (pending and spare), for tests.
func (s *slot) holding() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	if s.pending != nil {
		n++
	}
	if s.spare != nil {
		n++
	}
	return n
}

// close releases every frame the slot holds. Call it once both sides have stopped.
func (s *slot) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range []*frame{s.pending, s.spare} {
		if f != nil {
			f.mat.Close()
		}
	}
	s.pending, s.spare = nil, nil
}
