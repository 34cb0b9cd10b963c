package main

// baseline is the camera's tracker as it was before the ByteTrack-style one
// (greedy IoU matching on a velocity-shifted box, confirmation after MinHits
// matches, a TTL), kept verbatim here so that `make eval` can compare the two.

import (
	"sort"
	"time"

	"imageapid/camera"
)

// baselineConfig tunes tracking. Zero values take the defaults in brackets.
type baselineConfig struct {
	// IoUThreshold is the least overlap between a track's predicted box and a
	// detection for them to match [0.3].
	IoUThreshold float64 `yaml:"iou_threshold"`
	// MinHits is how many matched frames confirm a track [3]; unconfirmed
	// tracks emit no events, which keeps one-frame false detections out.
	MinHits int `yaml:"min_hits"`
	// TentativeMaxMissed is how many frames in a row an unconfirmed track may
	// miss before it is forgotten [1].
	TentativeMaxMissed int `yaml:"tentative_max_missed"`
	// TTL is how long a confirmed track lives unseen before it ends [2s].
	TTL time.Duration `yaml:"ttl"`
	// MaxMissed ends a confirmed track after this many analysed frames in a
	// row without a match, even within TTL [0: TTL alone decides].
	MaxMissed int `yaml:"max_missed"`
}

func (c baselineConfig) withDefaults() baselineConfig {
	if c.IoUThreshold <= 0 {
		c.IoUThreshold = 0.3
	}
	if c.MinHits <= 0 {
		c.MinHits = 3
	}
	if c.TentativeMaxMissed <= 0 {
		c.TentativeMaxMissed = 1
	}
	if c.TTL <= 0 {
		c.TTL = 2 * time.Second
	}
	return c
}

// Track is one object followed across frames.
type baselineTrack struct {
	ID        string
	Class     string
	Box       camera.Box // last matched detection's box
	Score     float64    // last matched detection's score
	FirstSeen time.Time
	LastSeen  time.Time
	Hits      int // matched frames
	Missed    int // analysed frames in a row without a match
	Confirmed bool

	vx, vy float64 // centre velocity, normalized units per second
}

// predict shifts the last box by the track's velocity to time now.
func (t *baselineTrack) predict(now time.Time) camera.Box {
	dt := now.Sub(t.LastSeen).Seconds()
	if dt <= 0 || (t.vx == 0 && t.vy == 0) {
		return t.Box
	}
	dt = min(dt, 1) // a velocity guess is worth little beyond a second
	dx, dy := t.vx*dt, t.vy*dt
	return camera.Box{t.Box[0] + dx, t.Box[1] + dy, t.Box[2] + dx, t.Box[3] + dy}
}

func (t *baselineTrack) observe(now time.Time, d camera.Detection) {
	if dt := now.Sub(t.LastSeen).Seconds(); dt > 0 && t.Hits > 0 {
		cx := (d.Box[0] + d.Box[2] - t.Box[0] - t.Box[2]) / 2 / dt
		cy := (d.Box[1] + d.Box[3] - t.Box[1] - t.Box[3]) / 2 / dt
		const keep = 0.5 // smooth detector jitter
		t.vx = keep*t.vx + (1-keep)*cx
		t.vy = keep*t.vy + (1-keep)*cy
	}
	t.Box, t.Score = d.Box, d.Score
	t.LastSeen = now
	t.Hits++
	t.Missed = 0
}

// Match pairs a track with the index of the detection it matched this frame.
type baselineMatch struct {
	Track     *baselineTrack
	Detection int
}

// baselineUpdate is what one frame changed.
type baselineUpdate struct {
	Matched   []baselineMatch  // every track seen this frame, new ones included
	Confirmed []*baselineTrack // tracks confirmed by this frame
	Ended     []*baselineTrack // confirmed tracks that ended (forgotten tentative ones are not reported)
}

// Tracker keeps ids across frames by greedy IoU matching per class. It is
// not safe for concurrent use: one camera's analysis goroutine owns it.
type baseline struct {
	cfg    baselineConfig
	newID  func() string
	tracks []*baselineTrack
}

// newBaseline returns a tracker naming new tracks with newID.
func newBaseline(cfg baselineConfig, newID func() string) *baseline {
	return &baseline{cfg: cfg.withDefaults(), newID: newID}
}

// Tracks returns the live tracks, confirmed or not. The slice is the
// caller's; the tracks are not.
func (tr *baseline) Tracks() []*baselineTrack { return append([]*baselineTrack(nil), tr.tracks...) }

// Update matches one frame's detections, taken at now, to the tracks.
func (tr *baseline) Update(now time.Time, dets []camera.Detection) baselineUpdate {
	type pair struct {
		iou  float64
		t, d int
	}
	var pairs []pair
	predicted := make([]camera.Box, len(tr.tracks))
	for i, t := range tr.tracks {
		predicted[i] = t.predict(now)
	}
	for ti, t := range tr.tracks {
		for di, d := range dets {
			if d.Class != t.Class {
				continue
			}
			// The last box catches a track whose velocity guess overshot.
			iou := max(predicted[ti].IoU(d.Box), t.Box.IoU(d.Box))
			if iou >= tr.cfg.IoUThreshold {
				pairs = append(pairs, pair{iou, ti, di})
			}
		}
	}
	sort.Slice(pairs, func(i, j int) bool {
		if pairs[i].iou != pairs[j].iou {
			return pairs[i].iou > pairs[j].iou
		}
		if pairs[i].t != pairs[j].t {
			return pairs[i].t < pairs[j].t
		}
		return pairs[i].d < pairs[j].d
	})
	trackUsed := make([]bool, len(tr.tracks))
	detUsed := make([]bool, len(dets))
	var up baselineUpdate
	for _, p := range pairs {
		if trackUsed[p.t] || detUsed[p.d] {
			continue
		}
		trackUsed[p.t], detUsed[p.d] = true, true
		t := tr.tracks[p.t]
		t.observe(now, dets[p.d])
		up.Matched = append(up.Matched, baselineMatch{t, p.d})
		if !t.Confirmed && t.Hits >= tr.cfg.MinHits {
			t.Confirmed = true
			up.Confirmed = append(up.Confirmed, t)
		}
	}
	kept := tr.tracks[:0]
	for i, t := range tr.tracks {
		if !trackUsed[i] {
			t.Missed++
			if tr.gone(now, t) {
				if t.Confirmed {
					up.Ended = append(up.Ended, t)
				}
				continue
			}
		}
		kept = append(kept, t)
	}
	clear(tr.tracks[len(kept):])
	tr.tracks = kept
	for di, d := range dets {
		if detUsed[di] {
			continue
		}
		t := &baselineTrack{ID: tr.newID(), Class: d.Class, FirstSeen: now}
		t.observe(now, d)
		tr.tracks = append(tr.tracks, t)
		up.Matched = append(up.Matched, baselineMatch{t, di})
		if tr.cfg.MinHits <= 1 {
			t.Confirmed = true
			up.Confirmed = append(up.Confirmed, t)
		}
	}
	return up
}

func (tr *baseline) gone(now time.Time, t *baselineTrack) bool {
	if !t.Confirmed {
		return t.Missed > tr.cfg.TentativeMaxMissed || now.Sub(t.LastSeen) > tr.cfg.TTL
	}
	return now.Sub(t.LastSeen) > tr.cfg.TTL || (tr.cfg.MaxMissed > 0 && t.Missed > tr.cfg.MaxMissed)
}

// Expire ends tracks unseen for longer than the TTL at now, for when no
// frames arrive (a camera that stalled or ended). It returns the confirmed ones.
func (tr *baseline) Expire(now time.Time) []*baselineTrack {
	var ended []*baselineTrack
	kept := tr.tracks[:0]
	for _, t := range tr.tracks {
		if now.Sub(t.LastSeen) > tr.cfg.TTL {
			if t.Confirmed {
				ended = append(ended, t)
			}
			continue
		}
		kept = append(kept, t)
	}
	clear(tr.tracks[len(kept):])
	tr.tracks = kept
	return ended
}

// Flush ends every track, returning the confirmed ones (for a camera that stops).
func (tr *baseline) Flush() []*baselineTrack {
	var ended []*baselineTrack
	for _, t := range tr.tracks {
		if t.Confirmed {
			ended = append(ended, t)
		}
	}
	tr.tracks = nil
	return ended
}
