package camera

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"gocv.io/x/gocv"
)

// trackShot is what analysis keeps per live track beyond the tracker's view:
// the best shot and its attributes, and when the track was last published.
type trackShot struct {
	best        *gocv.Mat // crop around the best detection; nil when no one needs crops
	bestDet     Detection // box normalized to best (or to the frame when best is nil)
	bestQuality float64
	attrs       map[string]any
	attrQuality float64 // quality of the shot attrs came from (0: never computed)
	attrAt      time.Time
	published   time.Time // last track_new or track_update
	changed     bool      // matched since it was last published
}

func (s *trackShot) close() {
	if s.best != nil {
		s.best.Close()
		s.best = nil
	}
}

// analyser is the analysis goroutine's own state.
type analyser struct {
	c          *Camera
	tracker    *Tracker
	zones      *zoneKeeper
	shots      map[string]*trackShot
	wantCrops  bool
	noGate     bool // templates seen, but no verification table for them
	lastErrLog time.Time
}

// analysisLoop takes frames from the slot, runs the detectors and the
// tracker, and queues events, until ctx ends; it then ends live tracks.
func (c *Camera) analysisLoop(ctx context.Context) {
	a := &analyser{
		c:         c,
		tracker:   NewTracker(c.cfg.Tracker, c.ids.next),
		zones:     newZoneKeeper(c.cfg.Zones, c.cfg.Lines, c.cfg.CountHold),
		shots:     map[string]*trackShot{},
		wantCrops: c.an.Attributor != nil || c.cfg.Events.BestShotJPEG,
	}
	defer func() {
		for _, s := range a.shots {
			s.close()
		}
	}()
	tick := time.NewTicker(min(c.cfg.Tracker.TTL/4, 500*time.Millisecond))
	defer tick.Stop()
	nextState := time.Now().Add(c.opts.StateInterval)
	for {
		c.analysisProgress.Store(time.Now().UnixNano())
		select {
		case <-ctx.Done():
			a.endTracks(a.tracker.Flush(), "stopped")
			c.activeTracks.Store(0)
			a.recount(time.Now())
			return
		case <-c.slot.ready:
			if f := c.slot.take(); f != nil {
				a.analyse(ctx, f)
				c.slot.recycle(f)
			}
		case now := <-tick.C:
			a.endTracks(a.tracker.Expire(now), "ttl")
			a.forgetGone()
			a.recount(now)
			if now.After(nextState) {
				nextState = now.Add(c.opts.StateInterval)
				c.notify()
			}
		}
	}
}

func (a *analyser) analyse(ctx context.Context, f *frame) {
	c := a.c
	start := time.Now()
	var (
		dets    []Detection
		skipped []string
	)
	for _, d := range c.an.Detectors {
		var (
			found []Detection
			err   error
		)
		if fd, ok := d.(FrameDetector); ok {
			found, err = fd.DetectFrame(ctx, f.mat, f.time, f.seq)
		} else {
			found, err = d.Detect(ctx, f.mat)
		}
		var skip Skipped
		if errors.As(err, &skip) {
			skipped = append(skipped, skip.Class)
			continue
		}
		if err != nil {
			c.detectErrs.Add(1)
			if ctx.Err() == nil && time.Since(a.lastErrLog) > 10*time.Second {
				a.lastErrLog = time.Now()
				c.log.Warn("detector failed", "err", err)
			}
			continue
		}
		dets = append(dets, found...)
	}
	took := time.Since(start)
	c.infCount.Add(1)
	c.infTotal.Add(uint64(took))
	c.infLast.Store(uint64(took))
	c.analyzed.Add(1)
	c.analysisFPS.tick(time.Now())

	up := a.tracker.UpdateAppearance(f.time, dets, a.appearance(ctx, f.mat, dets), skipped...)
	shown, ids := dets, confirmedTracks(len(dets), up.Matched)
	if len(skipped) > 0 { // viewers see the skipped classes' predicted boxes
		shown = slices.Clone(dets)
		for _, t := range up.Visible {
			if slices.Contains(skipped, t.Class) {
				shown = append(shown, Detection{Class: t.Class, Box: t.Box, Score: t.Score})
				ids = append(ids, t.ID)
			}
		}
	}
	c.tap.offer(f, shown, ids)
	for _, m := range up.Matched {
		s := a.shots[m.Track.ID]
		if s == nil {
			s = &trackShot{}
			a.shots[m.Track.ID] = s
		}
		s.changed = true
		d := dets[m.Detection]
		if q := c.an.Quality(f.mat, d); q > s.bestQuality {
			a.keepBest(s, f.mat, d, q)
		}
	}
	placeEvents := map[*Track][]zoneEvent{}
	for _, t := range up.Visible {
		if evs := a.zones.see(t); len(evs) > 0 {
			placeEvents[t] = evs
		}
	}
	for _, t := range up.Confirmed {
		s := a.shots[t.ID]
		a.attributes(ctx, t, s, false)
		a.publish(TrackNew, t, s, "")
	}
	for _, t := range up.Visible {
		for _, ev := range placeEvents[t] {
			a.publishPlace(ev, t, a.shots[t.ID])
		}
	}
	if c.cfg.Events.UpdateInterval > 0 {
		now := time.Now()
		for _, m := range up.Matched {
			t, s := m.Track, a.shots[m.Track.ID]
			if !t.Confirmed || !s.changed || now.Sub(s.published) < c.cfg.Events.UpdateInterval {
				continue
			}
			a.attributes(ctx, t, s, false)
			a.publish(TrackUpdate, t, s, "")
		}
	}
	a.endTracks(up.Ended, "ttl")
	a.forgetGone()
	a.recount(f.time)
}

// recount refreshes the zones' occupancy and the lines' counts in the
// camera's state, and announces the state when they changed.
func (a *analyser) recount(now time.Time) {
	if a.zones.empty() {
		return
	}
	a.zones.recount(now)
	c := a.c
	c.stateMu.Lock()
	changed := !maps.Equal(c.state.Zones, a.zones.counts) || !maps.Equal(c.state.Lines, a.zones.lineN)
	if changed {
		c.state.Zones, c.state.Lines = maps.Clone(a.zones.counts), maps.Clone(a.zones.lineN)
	}
	c.stateMu.Unlock()
	if changed {
		c.notify()
	}
}

// confirmedTracks lists per detection the confirmed track it matched
// (tracks confirmed by this very frame included), or "".
func confirmedTracks(n int, matched []Match) []string {
	if n == 0 {
		return nil
	}
	ids := make([]string, n)
	for _, m := range matched {
		if m.Track.Confirmed {
			ids[m.Detection] = m.Track.ID
		}
	}
	return ids
}

// keepBest records d as s's best shot, cropping the frame when crops are needed.
func (a *analyser) keepBest(s *trackShot, img gocv.Mat, d Detection, q float64) {
	s.bestQuality = q
	s.bestDet = d
	if !a.wantCrops {
		return
	}
	outer, inner, ok := around(img, d.Box, a.c.cfg.Attributes.Margin)
	if !ok {
		return
	}
	region := img.Region(outer)
	defer region.Close()
	if s.best == nil {
		crop := gocv.NewMat()
		s.best = &crop
	}
	region.CopyTo(s.best)
	s.bestDet.Box = inner
}

// attributes runs the attributor on s's best shot when it is due: the
// first time, when the shot got notably better after MinInterval, or (at the
// end) when it got better at all.
func (a *analyser) attributes(ctx context.Context, t *Track, s *trackShot, ending bool) {
	c := a.c
	if c.an.Attributor == nil || s.best == nil || s.best.Empty() {
		return
	}
	cfg := c.cfg.Attributes
	switch {
	case s.attrQuality == 0:
	case ending && s.bestQuality > s.attrQuality:
	case !ending && s.bestQuality >= s.attrQuality*cfg.MinGain && time.Since(s.attrAt) >= cfg.MinInterval:
	default:
		return
	}
	actx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	if ctx.Err() != nil { // a stopping camera still finishes its tracks' attributes
		var stop context.CancelFunc
		actx, stop = context.WithTimeout(context.Background(), cfg.Timeout)
		defer stop()
	}
	start := time.Now()
	attrs, err := c.an.Attributor.Attributes(actx, *s.best, s.bestDet)
	c.attrRuns.Add(1)
	c.attrTotal.Add(uint64(time.Since(start)))
	s.attrQuality, s.attrAt = s.bestQuality, time.Now()
	if err != nil {
		c.attrErrs.Add(1)
		if time.Since(a.lastErrLog) > 10*time.Second {
			a.lastErrLog = time.Now()
			c.log.Warn("attributes failed", "track", t.ID, "class", t.Class, "err", err)
		}
		return
	}
	if attrs != nil {
		s.attrs = attrs
		a.useTemplate(t, attrs)
	}
}

func (a *analyser) endTracks(ended []*Track, reason string) {
	for _, t := range ended {
		s := a.shots[t.ID]
		if s == nil {
			s = &trackShot{}
		}
		a.attributes(context.Background(), t, s, true)
		for _, ev := range a.zones.end(t.ID) {
			a.publishPlace(ev, t, s)
		}
		a.publish(TrackEnd, t, s, reason)
		s.close()
		delete(a.shots, t.ID)
	}
}

// forgetGone drops the shots of tracks the tracker no longer has
// (unconfirmed tracks vanish without an event) and counts the confirmed ones.
func (a *analyser) forgetGone() {
	live := a.tracker.Tracks()
	confirmed := 0
	for _, t := range live {
		if t.Confirmed {
			confirmed++
		}
	}
	a.c.activeTracks.Store(int64(confirmed))
	if len(live) == len(a.shots) {
		return
	}
	for id, s := range a.shots {
		if !slices.ContainsFunc(live, func(t *Track) bool { return t.ID == id }) {
			s.close()
			delete(a.shots, id)
		}
	}
}

// publishPlace queues a zone or line event of a track.
func (a *analyser) publishPlace(ev zoneEvent, t *Track, s *trackShot) {
	if s == nil {
		s = &trackShot{}
	}
	e := a.event(ev.typ, t, s, "")
	e.Zone, e.Line, e.Direction = ev.zone, ev.line, ev.direction
	a.enqueue(e)
}

// publish queues a track event.
func (a *analyser) publish(typ EventType, t *Track, s *trackShot, reason string) {
	s.published, s.changed = time.Now(), false
	e := a.event(typ, t, s, reason)
	if a.c.cfg.Events.BestShotJPEG && s.best != nil && !s.best.Empty() {
		jpeg, err := encodeJPEG(*s.best)
		if err != nil {
			a.c.log.Warn("best shot not encoded", "track", t.ID, "err", err)
		} else {
			e.BestShot = jpeg
		}
	}
	a.enqueue(e)
}

func (a *analyser) event(typ EventType, t *Track, s *trackShot, reason string) Event {
	c := a.c
	return Event{
		ID: c.ids.next(), Type: typ, CameraID: c.cfg.ID, TrackID: t.ID, Class: t.Class,
		BBox: t.Box, Score: t.Score, Hits: t.Hits,
		FirstSeen: t.FirstSeen.UTC(), LastSeen: t.LastSeen.UTC(), Time: time.Now().UTC(),
		Attributes: a.eventAttributes(s.attrs), Reason: reason, Zones: a.zones.zonesOf(t.ID),
	}
}

// enqueue queues an event, waiting at most PublishTimeout for room.
func (a *analyser) enqueue(e Event) {
	c := a.c
	timer := time.NewTimer(c.cfg.Events.PublishTimeout)
	defer timer.Stop()
	select {
	case c.events <- e:
		c.evQueued.Add(1)
	case <-timer.C:
		c.evDropped.Add(1)
		c.log.Warn("event queue full: event dropped", "type", e.Type, "track", e.TrackID)
	}
}

// eventAttributes copies attrs without the private keys, unless enabled.
func (a *analyser) eventAttributes(attrs map[string]any) map[string]any {
	if len(attrs) == 0 {
		return nil
	}
	out := maps.Clone(attrs)
	if !a.c.cfg.Events.Templates {
		for _, k := range a.c.cfg.Events.PrivateKeys {
			delete(out, k)
		}
	}
	return out
}

func encodeJPEG(img gocv.Mat) ([]byte, error) {
	buf, err := gocv.IMEncode(gocv.JPEGFileExt, img)
	if err != nil {
		return nil, fmt.Errorf("encode jpeg: %w", err)
	}
	defer buf.Close()
	return append([]byte(nil), buf.GetBytes()...), nil
}
