package sessions

import (
	"context"
	"testing"
)

// Sessions opened and cancelled in a loop are forgotten oldest first past
// the bound on kept sessions, and never push out an open one.
func TestKeptSessionsBounded(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxOpen = 2
	m, err := NewManager(cfg, &Analyzer{}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	open, err := m.Create(Request{ChallengesSet: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10*keptPerOpen*cfg.MaxOpen; i++ {
		c, err := m.Create(Request{ChallengesSet: true})
		if err != nil {
			t.Fatalf("create %d: %v", i, err)
		}
		if _, err := m.Cancel(context.Background(), c.ID); err != nil {
			t.Fatal(err)
		}
	}
	m.mu.Lock()
	n := len(m.sessions)
	m.mu.Unlock()
	if n > keptPerOpen*cfg.MaxOpen {
		t.Errorf("%d sessions kept, the bound is %d", n, keptPerOpen*cfg.MaxOpen)
	}
	if v, err := m.Get(open.ID); err != nil || v.Status != Waiting {
		t.Errorf("the open session was pushed out: %v %v", v.Status, err)
	}
}
