package camera

import (
	"context"
	"time"

	"gocv.io/x/gocv"
)

// FrameDetector is a Detector that also wants to know when its frame was
// captured and its sequence number (frames read from the source since it
// was opened, those dropped before analysis included). The camera calls
// DetectFrame instead of Detect on such detectors.
type FrameDetector interface {
	Detector
	DetectFrame(ctx context.Context, frame gocv.Mat, at time.Time, seq uint64) ([]Detection, error)
}

// Cadence says on which frames a costly detector runs: at most once per
// Interval of frame time, or, when Interval is 0, once per Every frames of
// the source. Both count the source's frames, not the analysed ones, so a
// loaded camera that drops frames before analysis still detects as often
// in the video's time (as far as its analysis keeps up).
type Cadence struct {
	Interval time.Duration
	Every    int

	started bool
	next    time.Time // Interval: when the next run is due
	lastSeq uint64    // Every: the frame of the last run
}

// cadenceSlack is the share of the interval a frame may come early and still
// be due: frame times jitter by a few milliseconds, and a frame just before
// its time should not put the run off by a whole frame.
const cadenceSlack = 8

// Due tells whether the detector runs on the frame captured at at with
// sequence number seq, and if so counts the run.
func (c *Cadence) Due(at time.Time, seq uint64) bool {
	switch {
	case c.Interval > 0:
		if c.started && at.Before(c.next.Add(-c.Interval/cadenceSlack)) && !at.Before(c.next.Add(-2*c.Interval)) {
			return false // not yet due (a clock that went back a lot restarts the pace)
		}
		// Runs keep to the pace on average (a late run brings the next one
		// closer), but never come in a burst after a long gap.
		c.next = c.next.Add(c.Interval)
		if !c.started || c.next.Before(at) {
			c.next = at.Add(c.Interval)
		}
	case c.Every > 1:
		// A seq at or before the last run's means the source was reopened: due.
		if c.started && seq > c.lastSeq && seq-c.lastSeq < uint64(c.Every) {
			return false
		}
		c.lastSeq = seq
	}
	c.started = true
	return true
}

// paced runs a detector of one class on the frames its cadence says, and
// reports the others as Skipped, so that the tracker moves that class's
// tracks by their motion instead of counting them missed.
type paced struct {
	inner   Detector
	class   string
	cadence Cadence
}

// Paced runs d, which finds objects of class, at cadence c. A cadence that
// runs on every frame returns d itself.
func Paced(d Detector, class string, c Cadence) Detector {
	if c.Interval <= 0 && c.Every <= 1 {
		return d
	}
	return &paced{inner: d, class: class, cadence: c}
}

// Detect, without a frame time, runs on every frame.
func (p *paced) Detect(ctx context.Context, frame gocv.Mat) ([]Detection, error) {
	return p.inner.Detect(ctx, frame)
}

func (p *paced) DetectFrame(ctx context.Context, frame gocv.Mat, at time.Time, seq uint64) ([]Detection, error) {
	if !p.cadence.Due(at, seq) {
		return nil, Skipped{Class: p.class}
	}
	return p.inner.Detect(ctx, frame)
}
