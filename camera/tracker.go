package camera

import (
	"slices"
	"time"

	"imageapid/internal/assign"
)

// TrackerConfig tunes tracking. Zero values take the defaults in brackets,
// which are ByteTrack's published defaults (Zhang et al. 2022) where it has
// one. Scores are the detectors' calibrated ones, in [0, 1].
type TrackerConfig struct {
	// HighScore splits detections: those at least this sure are matched to
	// every track first; the rest, down to LowScore, only keep tracks that
	// were seen on the previous frame alive (through partial occlusion) [0.5].
	HighScore float64 `yaml:"high_score"`
	// LowScore is the least score a detection needs to be used at all [0.1].
	LowScore float64 `yaml:"low_score"`
	// NewScore is the least score that starts a track [HighScore + 0.1]
	// (ByteTrack's); unconfirmed tracks then grow on detections down to
	// HighScore.
	NewScore float64 `yaml:"new_score"`
	// IoUThreshold is the least overlap between a track's predicted box and
	// a sure detection for them to match [0.2].
	IoUThreshold float64 `yaml:"iou_threshold"`
	// LowIoUThreshold is the same for the less sure detections [0.5].
	LowIoUThreshold float64 `yaml:"low_iou_threshold"`
	// MinHits matches within ConfirmFrames frames its class was detected on
	// confirm a track [3 within 5]; unconfirmed tracks emit no events, which
	// keeps brief false detections out. Both count detections, not frames or
	// seconds: a body detector paced at 0.4 s (body_interval) or slowed to
	// 0.7 s by a loaded box confirms a walker on the same evidence, and no
	// announced track is shorter than MinHits-1 detection intervals.
	MinHits       int `yaml:"min_hits"`
	ConfirmFrames int `yaml:"confirm_frames"`
	// TentativeMaxMissed is how many detections of its class in a row an
	// unconfirmed track may miss before it is forgotten [ConfirmFrames - MinHits].
	TentativeMaxMissed int `yaml:"tentative_max_missed"`
	// TTL is how long a confirmed track lives unseen before it ends [2s].
	// Meanwhile it is lost: its box moves on by its velocity, and a sure
	// detection there takes the track back with its id.
	TTL time.Duration `yaml:"ttl"`
	// MaxMissed ends a confirmed track after this many analysed frames in a
	// row without a match, even within TTL [0: TTL alone decides].
	MaxMissed int `yaml:"max_missed"`
	// AppearanceMaxFAR sets, for tracks with an appearance template (faces
	// whose best shot has one), the largest template distance at which a
	// detection may be the same person: the distance at this false-accept
	// rate in the template network's verification table [0.01, the kiosk
	// sessions' continuity gate].
	AppearanceMaxFAR float64 `yaml:"appearance_max_far"`
}

func (c TrackerConfig) withDefaults() TrackerConfig {
	if c.HighScore <= 0 {
		c.HighScore = 0.5
	}
	if c.LowScore <= 0 {
		c.LowScore = 0.1
	}
	c.LowScore = min(c.LowScore, c.HighScore)
	if c.NewScore <= 0 {
		c.NewScore = c.HighScore + 0.1
	}
	if c.IoUThreshold <= 0 {
		c.IoUThreshold = 0.2
	}
	if c.LowIoUThreshold <= 0 {
		c.LowIoUThreshold = 0.5
	}
	if c.MinHits <= 0 {
		c.MinHits = 3
	}
	if c.ConfirmFrames < c.MinHits {
		c.ConfirmFrames = c.MinHits + 2
	}
	if c.TentativeMaxMissed <= 0 {
		c.TentativeMaxMissed = max(c.ConfirmFrames-c.MinHits, 1)
	}
	if c.TTL <= 0 {
		c.TTL = 2 * time.Second
	}
	if c.AppearanceMaxFAR <= 0 {
		c.AppearanceMaxFAR = 0.01
	}
	return c
}

// tentativeMinIoU is the least overlap for an unconfirmed track to match
// (ByteTrack's 0.7 matching cost for them).
const tentativeMinIoU = 0.3

// matchBuffer widens a track's predicted box and a detection, each side by
// this share of its width and height, before their overlap is taken for the
// sure detections (the buffered IoU of Yang et al. 2023, C-BIoU, with their
// first-stage buffer): a narrow walker seen every 0.4 s (body_interval) has
// moved most of their own width by then, and plain IoU would lose them.
const matchBuffer = 0.3

// The buffer grows with the time since a track's last match, by these
// shares of the box per second, when that is more than matchBuffer: on a
// loaded camera the body detector's runs come farther apart (its own cost
// and the frames dropped meanwhile), and walkers move on in the video's
// time, not in frames. A confirmed track's motion model already follows its
// walker, so its buffer covers the error of its velocity (0.75: matchBuffer
// at 0.4 s, body_interval), and, while it is lost, a walker's turn; a
// tentative track has no velocity yet, and a walker in vtest.avi moves
// about 1.7 of their width a second, so its buffer covers the walk itself
// (3: a detection 0.4 or 0.7 s later, a width or more on, still matches at
// score 0.5). Tracks matched on every frame of 25 fps video keep
// matchBuffer. Both were chosen on vtest.avi only (TestVtestTracksPerPerson,
// at the paces of an idle and a loaded camera): matching lost tracks by the
// time between detections instead, or capping the gap at 0.7 or 1 s, gave
// 1.08-1.29 tracks per walker against 0.92-1.04.
const (
	bufferGrowth    = 0.75
	tentativeGrowth = 3.0
)

// Track is one object followed across frames.
type Track struct {
	ID    string
	Class string
	// Box is the motion model's box at the last match (the detection's,
	// smoothed), moved on by it on frames its class's detector skipped; a
	// lost track keeps the box it was last seen with.
	Box       Box
	Score     float64 // last matched detection's score
	FirstSeen time.Time
	LastSeen  time.Time // last matched
	Hits      int       // matched frames
	Missed    int       // analysed frames in a row without a match
	Confirmed bool

	age       int // analysed frames of its class since it started
	filter    *boxFilter
	predicted Box           // the filter's box at the frame being matched
	gap       time.Duration // from its last match to the frame being matched
	template  []float32     // appearance: a unit vector, nil when unknown
}

// Match pairs a track with the index of the detection it matched this frame.
type Match struct {
	Track     *Track
	Detection int
}

// FrameUpdate is what one frame changed.
type FrameUpdate struct {
	Matched   []Match  // every track matched this frame, new ones included
	Confirmed []*Track // tracks confirmed by this frame
	Ended     []*Track // confirmed tracks that ended (forgotten tentative ones are not reported)
	// Visible are the confirmed tracks on this frame: matched, or predicted
	// by the motion model on a frame their class's detector skipped.
	Visible []*Track
}

// Tracker keeps ids across frames, per class, ByteTrack's way: a Kalman
// filter per track predicts its box, sure detections are matched to the
// predictions first (Hungarian on IoU), less sure ones then keep the tracks
// that were not matched alive, and lost tracks keep their id until their TTL.
// It is not safe for concurrent use: one camera's analysis goroutine owns it.
//
// Tracks may carry an appearance template (a face's, from its best shot):
// with a gate set (SetAppearanceGate) and an AppearanceFunc for the frame,
// a pair whose match is in doubt (a lost track, or a track or detection with
// two candidates, as when two people cross) is refused when the detection's
// template is farther than the gate from the track's, and a lost track is
// taken back by a detection or new track whose template is within the gate,
// wherever it reappears.
type Tracker struct {
	cfg    TrackerConfig
	newID  func() string
	tracks []*Track
	gate   float64 // largest template distance of one person; 0: appearance unused
}

// AppearanceFunc returns the appearance template (a unit vector) of
// detection i of the frame being tracked, or nil when it has none. The
// tracker calls it only when a match is in doubt, at most once per detection.
type AppearanceFunc func(i int) []float32

// SetAppearanceGate sets the largest squared distance between two unit
// templates of one person (0 turns appearance off).
func (tr *Tracker) SetAppearanceGate(d float64) { tr.gate = max(d, 0) }

// AppearanceGate is the gate set, 0 when appearance is off.
func (tr *Tracker) AppearanceGate() float64 { return tr.gate }

// SetTemplate gives a track its appearance template (a unit vector), e.g.
// from its best shot.
func (tr *Tracker) SetTemplate(t *Track, v []float32) { t.template = v }

// NewTracker returns a tracker naming new tracks with newID.
func NewTracker(cfg TrackerConfig, newID func() string) *Tracker {
	return &Tracker{cfg: cfg.withDefaults(), newID: newID}
}

// Tracks returns the live tracks, confirmed or not. The slice is the
// caller's; the tracks are not.
func (tr *Tracker) Tracks() []*Track { return append([]*Track(nil), tr.tracks...) }

// Update matches one frame's detections, taken at now, to the tracks.
// Classes in skipped were not detected on this frame (a body detector that
// runs on every n-th frame): their tracks move by their motion model and
// count neither a hit nor a miss.
func (tr *Tracker) Update(now time.Time, dets []Detection, skipped ...string) FrameUpdate {
	return tr.UpdateAppearance(now, dets, nil, skipped...)
}

// UpdateAppearance is Update with the frame's detections' templates on demand.
func (tr *Tracker) UpdateAppearance(now time.Time, dets []Detection, app AppearanceFunc, skipped ...string) FrameUpdate {
	var up FrameUpdate
	var emb *embeddings
	if app != nil && tr.gate > 0 {
		emb = &embeddings{fn: app, got: make([]bool, len(dets)), vec: make([][]float32, len(dets))}
	}
	for _, t := range tr.tracks {
		if t.Missed > 0 {
			t.filter.x[7] = 0 // a lost box keeps its size (ByteTrack)
		}
		t.filter.predict(now)
		t.predicted = t.filter.box()
		t.gap = now.Sub(t.LastSeen)
	}
	var classes []string
	for _, t := range tr.tracks {
		if !slices.Contains(classes, t.Class) {
			classes = append(classes, t.Class)
		}
	}
	for _, d := range dets {
		if !slices.Contains(classes, d.Class) {
			classes = append(classes, d.Class)
		}
	}
	for _, class := range classes {
		if slices.Contains(skipped, class) {
			for _, t := range tr.tracks {
				if t.Class == class && t.Missed == 0 {
					t.Box = t.predicted // not detected on this frame: where the motion takes it
					if t.Confirmed {
						up.Visible = append(up.Visible, t)
					}
				}
			}
			continue
		}
		tr.updateClass(now, class, dets, emb, &up)
	}
	return up
}

// embeddings asks for a frame's detections' templates once each.
type embeddings struct {
	fn  AppearanceFunc
	got []bool
	vec [][]float32
}

func (e *embeddings) of(i int) []float32 {
	if !e.got[i] {
		e.got[i], e.vec[i] = true, e.fn(i)
	}
	return e.vec[i]
}

// far tells whether detection di is surely not the person of track t: both
// have templates and they are farther apart than the gate. It asks for the
// detection's template only when t has one.
func (tr *Tracker) far(t *Track, di int, emb *embeddings) bool {
	if emb == nil || t.template == nil {
		return false
	}
	v := emb.of(di)
	return v != nil && templateDistance(t.template, v) > tr.gate
}

// templateDistance is the squared Euclidean distance between two unit
// vectors (the verification matcher's); different lengths are far apart.
func templateDistance(a, b []float32) float64 {
	if len(a) != len(b) {
		return 4
	}
	var d float64
	for i := range a {
		x := float64(a[i]) - float64(b[i])
		d += x * x
	}
	return d
}

func (tr *Tracker) updateClass(now time.Time, class string, dets []Detection, emb *embeddings, up *FrameUpdate) {
	var high, low []int
	for i, d := range dets {
		switch {
		case d.Class != class:
		case d.Score >= tr.cfg.HighScore:
			high = append(high, i)
		case d.Score >= tr.cfg.LowScore:
			low = append(low, i)
		}
	}
	var confirmed, recent, tentative []*Track
	for _, t := range tr.tracks {
		switch {
		case t.Class != class:
		case !t.Confirmed:
			tentative = append(tentative, t)
		default:
			confirmed = append(confirmed, t)
			if t.Missed == 0 {
				recent = append(recent, t)
			}
		}
	}
	matched := map[*Track]int{}
	observe := func(t *Track, di int) {
		matched[t] = di
		t.observe(now, dets[di])
		up.Matched = append(up.Matched, Match{t, di})
		if t.template == nil && emb != nil && emb.got[di] {
			t.template = emb.vec[di]
		}
	}
	// 1: sure detections with every confirmed track, lost ones included.
	high = tr.associate(confirmed, high, dets, tr.cfg.IoUThreshold, true, emb, observe, bufferedIoU)
	// 2: less sure detections with the tracks seen last frame and unmatched yet.
	recent = slices.DeleteFunc(recent, func(t *Track) bool { _, ok := matched[t]; return ok })
	tr.associate(recent, low, dets, tr.cfg.LowIoUThreshold, false, emb, observe, predictedIoU)
	// 3: the remaining sure detections with unconfirmed tracks.
	high = tr.associate(tentative, high, dets, tentativeMinIoU, true, emb, observe, tentativeIoU)
	// 4: lost tracks with a template taken back by appearance, wherever they reappear.
	var absorbed map[*Track]bool
	high, absorbed = tr.reidentify(now, confirmed, tentative, high, dets, emb, matched, up)

	kept := tr.tracks[:0]
	for _, t := range tr.tracks {
		if t.Class != class {
			kept = append(kept, t)
			continue
		}
		if absorbed[t] {
			continue // now part of the lost track it was
		}
		t.age++
		_, ok := matched[t]
		if !ok {
			t.Missed++
			if tr.gone(now, t) {
				if t.Confirmed {
					up.Ended = append(up.Ended, t)
				}
				continue
			}
		}
		if !t.Confirmed {
			if t.Hits < tr.cfg.MinHits && t.age >= tr.cfg.ConfirmFrames {
				continue // not confirmed in time: forgotten without an event
			}
			if t.Hits >= tr.cfg.MinHits {
				t.Confirmed = true
				up.Confirmed = append(up.Confirmed, t)
			}
		}
		if t.Confirmed && ok {
			up.Visible = append(up.Visible, t)
		}
		kept = append(kept, t)
	}
	clear(tr.tracks[len(kept):])
	tr.tracks = kept
	for _, di := range high {
		d := dets[di]
		if d.Score < tr.cfg.NewScore {
			continue
		}
		t := &Track{ID: tr.newID(), Class: class, FirstSeen: now, age: 1}
		t.observe(now, d)
		if emb != nil && emb.got[di] {
			t.template = emb.vec[di]
		}
		tr.tracks = append(tr.tracks, t)
		up.Matched = append(up.Matched, Match{t, di})
		if tr.cfg.MinHits <= 1 {
			t.Confirmed = true
			up.Confirmed = append(up.Confirmed, t)
			up.Visible = append(up.Visible, t)
		}
	}
}

// associate pairs tracks with the detections dets[idx] at least cost, 1 -
// the similarity of a detection to a track's predicted box, each pair's at
// least minSim. The similarity is their IoU, times the detection's score when
// byScore (ByteTrack's score fusion, which lets a surer detection win).
// With appearance, a pair in doubt (a lost track, or a track or detection
// with another candidate) whose templates are far apart is refused.
// It calls observe for each pair and returns the detections left.
func (tr *Tracker) associate(tracks []*Track, idx []int, dets []Detection, minSim float64, byScore bool, emb *embeddings,
	observe func(*Track, int), overlap func(*Track, Box) float64) []int {
	if len(tracks) == 0 || len(idx) == 0 {
		return idx
	}
	cost := make([][]float64, len(tracks))
	rows, cols := make([]int, len(tracks)), make([]int, len(idx))
	for i, t := range tracks {
		cost[i] = make([]float64, len(idx))
		for j, di := range idx {
			sim := overlap(t, dets[di].Box)
			if byScore {
				sim *= min(max(dets[di].Score, 0), 1)
			}
			if sim >= minSim {
				cost[i][j] = 1 - sim
				rows[i]++
				cols[j]++
			} else {
				cost[i][j] = assign.Forbidden
			}
		}
	}
	if emb != nil {
		for i, t := range tracks {
			for j, di := range idx {
				doubt := t.Missed > 0 || rows[i] > 1 || cols[j] > 1
				if cost[i][j] != assign.Forbidden && doubt && tr.far(t, di, emb) {
					cost[i][j] = assign.Forbidden
				}
			}
		}
	}
	used := make([]bool, len(idx))
	for i, j := range assign.Min(cost) {
		if j >= 0 {
			used[j] = true
			observe(tracks[i], idx[j])
		}
	}
	left := idx[:0:0]
	for j, di := range idx {
		if !used[j] {
			left = append(left, di)
		}
	}
	return left
}

// predictedIoU is the overlap of a detection with a track's predicted box.
func predictedIoU(t *Track, b Box) float64 { return t.predicted.IoU(b) }

// bufferedIoU is the overlap of a detection with a confirmed track's
// predicted box, both widened by matchBuffer, or more the longer the track
// has gone unmatched.
func bufferedIoU(t *Track, b Box) float64 { return t.buffered(b, bufferGrowth) }

// tentativeIoU is the same for an unconfirmed track, whose velocity is not
// known yet: its buffer grows faster.
func tentativeIoU(t *Track, b Box) float64 { return t.buffered(b, tentativeGrowth) }

// buffered is the IoU of a detection and the track's predicted box, both
// widened on each side by matchBuffer or, if that is more, growth times the
// seconds since the track's last match.
func (t *Track) buffered(b Box, growth float64) float64 {
	s := max(matchBuffer, growth*t.gap.Seconds())
	return t.predicted.grow(s).IoU(b.grow(s))
}

// reidentify gives lost confirmed tracks with a template back their person
// by appearance alone, wherever they reappear: the candidates are the
// unconfirmed tracks matched this frame (a returning person seen again for
// a frame or two) and the sure detections left, which would start tracks.
// A pair within the gate is matched at least distance: a detection restarts
// the lost track's motion there; an unconfirmed track is absorbed, the lost
// track taking its motion and hits. It returns the detections left and the
// absorbed tracks, and rewrites this frame's matches to the lost tracks.
func (tr *Tracker) reidentify(now time.Time, confirmed, tentative []*Track, high []int, dets []Detection, emb *embeddings,
	matched map[*Track]int, up *FrameUpdate) ([]int, map[*Track]bool) {
	if emb == nil {
		return high, nil
	}
	var lost []*Track
	for _, t := range confirmed {
		if _, ok := matched[t]; !ok && t.template != nil {
			lost = append(lost, t)
		}
	}
	if len(lost) == 0 {
		return high, nil
	}
	type candidate struct {
		track *Track // nil for a detection
		det   int
		vec   []float32
	}
	var cands []candidate
	for _, t := range tentative {
		if di, ok := matched[t]; ok {
			if t.template == nil {
				t.template = emb.of(di)
			}
			if t.template != nil {
				cands = append(cands, candidate{t, di, t.template})
			}
		}
	}
	for _, di := range high {
		if dets[di].Score < tr.cfg.NewScore {
			continue
		}
		if v := emb.of(di); v != nil {
			cands = append(cands, candidate{nil, di, v})
		}
	}
	if len(cands) == 0 {
		return high, nil
	}
	cost := make([][]float64, len(lost))
	for i, t := range lost {
		cost[i] = make([]float64, len(cands))
		for j, c := range cands {
			if d := templateDistance(t.template, c.vec); d <= tr.gate {
				cost[i][j] = d
			} else {
				cost[i][j] = assign.Forbidden
			}
		}
	}
	var (
		absorbed map[*Track]bool
		taken    = map[int]bool{}
	)
	for i, j := range assign.Min(cost) {
		if j < 0 {
			continue
		}
		l, c := lost[i], cands[j]
		matched[l] = c.det
		taken[c.det] = true
		if c.track == nil {
			l.restart(now, dets[c.det])
			up.Matched = append(up.Matched, Match{l, c.det})
			continue
		}
		if absorbed == nil {
			absorbed = map[*Track]bool{}
		}
		absorbed[c.track] = true
		delete(matched, c.track)
		l.filter, l.Box, l.Score, l.LastSeen, l.Missed = c.track.filter, c.track.Box, c.track.Score, c.track.LastSeen, 0
		l.Hits += c.track.Hits
		for k := range up.Matched {
			if up.Matched[k].Track == c.track {
				up.Matched[k].Track = l
			}
		}
	}
	return slices.DeleteFunc(high, func(di int) bool { return taken[di] }), absorbed
}

// restart takes a lost track back at a detection far from where its motion
// took it: the motion model starts afresh there.
func (t *Track) restart(now time.Time, d Detection) {
	t.filter = nil
	t.observe(now, d)
}

func (t *Track) observe(now time.Time, d Detection) {
	if t.filter == nil {
		t.filter = newBoxFilter(d.Box, now)
	} else {
		t.filter.update(d.Box)
	}
	t.Box, t.Score = t.filter.box(), d.Score
	t.LastSeen = now
	t.Hits++
	t.Missed = 0
}

func (tr *Tracker) gone(now time.Time, t *Track) bool {
	if !t.Confirmed {
		return t.Missed > tr.cfg.TentativeMaxMissed || now.Sub(t.LastSeen) > tr.cfg.TTL
	}
	return now.Sub(t.LastSeen) > tr.cfg.TTL || (tr.cfg.MaxMissed > 0 && t.Missed > tr.cfg.MaxMissed)
}

// Expire ends tracks unseen for longer than the TTL at now, for when no
// frames arrive (a camera that stalled or ended). It returns the confirmed ones.
func (tr *Tracker) Expire(now time.Time) []*Track {
	var ended []*Track
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
func (tr *Tracker) Flush() []*Track {
	var ended []*Track
	for _, t := range tr.tracks {
		if t.Confirmed {
			ended = append(ended, t)
		}
	}
	tr.tracks = nil
	return ended
}
