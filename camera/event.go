package camera

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"sync"
	"time"
)

// EventType names what happened to a track.
type EventType string

const (
	TrackNew    EventType = "track_new"    // a track was confirmed
	TrackUpdate EventType = "track_update" // a confirmed track changed (rate-limited)
	TrackEnd    EventType = "track_end"    // a track ended (unseen past its TTL, or its camera stopped)
	ZoneEnter   EventType = "zone_enter"   // a confirmed track entered a zone (once per track and zone)
	ZoneExit    EventType = "zone_exit"    // it left the zone, or ended in it (once per track and zone)
	LineCross   EventType = "line_cross"   // a confirmed track crossed a counting line (once per track and line)
)

// Event is what a camera publishes about a track. Times are UTC, so JSON
// carries them as RFC 3339 with nanoseconds and a Z.
type Event struct {
	ID        string    `json:"id"` // unique; sorts in time order
	Type      EventType `json:"type"`
	CameraID  string    `json:"camera_id"`
	TrackID   string    `json:"track_id"`
	Class     string    `json:"class"`
	BBox      Box       `json:"bbox"` // last seen box, normalized [x1,y1,x2,y2]
	Score     float64   `json:"score"`
	Hits      int       `json:"hits"` // frames the track was matched in
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	Time      time.Time `json:"time"`
	// Attributes come from the best shot (nil until computed). Keys in
	// EventConfig.PrivateKeys (templates) are left out unless enabled.
	Attributes map[string]any `json:"attributes,omitempty"`
	// BestShot is a JPEG of the best shot, only when EventConfig.BestShotJPEG is on.
	BestShot []byte `json:"best_shot,omitempty"`
	// Reason says why a track ended: "ttl" or "stopped".
	Reason string `json:"reason,omitempty"`
	// Zones are the camera's zones the track is in (see ZoneConfig).
	Zones []string `json:"zones,omitempty"`
	// Zone names the zone of zone_enter and zone_exit; Line and Direction
	// (LeftToRight or RightToLeft) the line of line_cross.
	Zone      string `json:"zone,omitempty"`
	Line      string `json:"line,omitempty"`
	Direction string `json:"direction,omitempty"`
}

// EventSink receives a camera's events in order, from one goroutine per
// camera. Publish should hand the event on quickly (to an outbox, say) and
// must return when ctx ends; the camera counts and drops events it fails to publish.
type EventSink interface {
	Publish(ctx context.Context, e Event) error
}

// SinkFunc adapts a function to EventSink.
type SinkFunc func(ctx context.Context, e Event) error

// Publish calls f.
func (f SinkFunc) Publish(ctx context.Context, e Event) error { return f(ctx, e) }

// idGen makes unique ids that sort in time order: 16 hex digits of Unix
// nanoseconds, strictly increasing per generator, then 8 random hex digits
// so generators in other processes do not collide.
type idGen struct {
	mu   sync.Mutex
	last int64
	salt string
}

func newIDGen() *idGen {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		binary.BigEndian.PutUint32(b[:], uint32(time.Now().UnixNano()))
	}
	return &idGen{salt: hex.EncodeToString(b[:])}
}

func (g *idGen) next() string {
	g.mu.Lock()
	ns := max(time.Now().UnixNano(), g.last+1)
	g.last = ns
	g.mu.Unlock()
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(ns))
	return hex.EncodeToString(b[:]) + g.salt
}
