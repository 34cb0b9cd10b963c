package ui

import "sync"

// TrackNames remembers the person each live track was identified as, so
// that the previews can write the name beside the box. It holds at most
// max tracks and forgets the oldest first; a track's end forgets it.
type TrackNames struct {
	mu    sync.Mutex
	max   int
	names map[string]string
	order []string // track ids, oldest first
}

// NewTrackNames keeps the names of at most max tracks.
func NewTrackNames(max int) *TrackNames {
	return &TrackNames{max: max, names: map[string]string{}}
}

// Set records the name a track was identified as; an empty name forgets it.
func (n *TrackNames) Set(trackID, name string) {
	if name == "" {
		n.Forget(trackID)
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.names[trackID]; !ok {
		n.order = append(n.order, trackID)
		for len(n.order) > n.max {
			delete(n.names, n.order[0])
			n.order = n.order[1:]
		}
	}
	n.names[trackID] = name
}

// Forget drops a track's name.
func (n *TrackNames) Forget(trackID string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.names[trackID]; !ok {
		return
	}
	delete(n.names, trackID)
	for i, id := range n.order {
		if id == trackID {
			n.order = append(n.order[:i], n.order[i+1:]...)
			break
		}
	}
}

// Name is the name a track was identified as, or "".
func (n *TrackNames) Name(trackID string) string {
	if n == nil {
		return ""
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.names[trackID]
}
