package sessions

import (
	"math"
	"time"

	"imageapid/estimators/face"
)

// Challenge codes. Directions are the person's own, measured on the
// unmirrored image with the fitter's signs (yaw positive when the person
// turns to their own left, pitch positive looking up).
const (
	Blink      = "blink"
	TurnLeft   = "turn_left"
	TurnRight  = "turn_right"
	LookUp     = "look_up"
	LookDown   = "look_down"
	Smile      = "smile"
	MoveCloser = "move_closer"
)

var challengeCodes = []string{Blink, TurnLeft, TurnRight, LookUp, LookDown, Smile, MoveCloser}

func knownChallenge(c string) bool {
	for _, k := range challengeCodes {
		if k == c {
			return true
		}
	}
	return false
}

// Thresholds of the challenges, relative to the person's own frontal
// baseline where a face's proportions vary between people.
const (
	// frontalYaw and frontalPitch bound a frontal face (degrees from the baseline).
	frontalYaw   = 15.0
	frontalPitch = 15.0
	// turnYaw and tiltPitch are how far a turn or a nod must go.
	// A head pitches less far than it turns.
	turnYaw   = 20.0
	tiltPitch = 10.0
	// blinkClosed and blinkOpen are the eye aperture, as a share of the
	// open baseline, below which eyes count as closed and above which open
	// again. The face mesh never closes its eyes fully: on a blink its
	// aperture falls to about half or two thirds of the open one, while it
	// wavers by a few percent on open eyes.
	blinkClosed = 0.75
	blinkOpen   = 0.88
	// blinkMaxClosed is the longest closure that is still a blink.
	blinkMaxClosed = 1500 * time.Millisecond
	// smileWidth is the growth of the mouth's width (over the eyes'
	// distance) a smile needs, held for smileHold.
	smileWidth = 1.12
	smileHold  = 150 * time.Millisecond
	// closerWidth is the growth of the face's width move_closer needs.
	closerWidth = 1.3
)

// baseline is the person's frontal face, from the first step.
type baseline struct {
	yaw, pitch, eyeOpen, mouthWidth float64
	// depth are the depth points of the baseline frame nearest the median
	// yaw: what a turned face is compared with.
	depth []face.Point
}

// challengeState follows one challenge from the moment it is asked.
type challengeState struct {
	code    string
	askedAt time.Duration
	// frontal: a frontal face was seen after the challenge was asked.
	frontal bool
	// acted: the movement was made; actedAt when.
	acted   bool
	actedAt time.Duration
	// closedAt is when the eyes closed (blink), smileSince when the smile began.
	closedAt   time.Duration
	closed     bool
	smileSince time.Duration
	smiling    bool
	startWidth float64
	done       bool
	doneAt     time.Duration
	// peak is the strongest figure the movement reached (degrees, share).
	peak float64
}

func (b baseline) isFrontal(f *FaceFigures) bool {
	return math.Abs(f.Yaw-b.yaw) < frontalYaw && math.Abs(f.Pitch-b.pitch) < frontalPitch
}

// update advances the challenge with one frame's face at time t and
// reports whether it is done.
func (c *challengeState) update(b baseline, f *FaceFigures, t time.Duration) bool {
	if c.done {
		return true
	}
	frontal := b.isFrontal(f)
	if !c.frontal {
		if !frontal {
			return false
		}
		c.frontal = true
		c.startWidth = f.WidthPx
	}
	switch c.code {
	case TurnLeft, TurnRight, LookUp, LookDown:
		amount := c.movement(b, f)
		if (c.code == LookUp || c.code == LookDown) && math.Abs(f.Yaw-b.yaw) >= frontalYaw {
			amount = 0 // a turned head reads as pitched: a nod is made facing the camera
		}
		c.peak = math.Max(c.peak, amount)
		if !c.acted {
			if amount >= c.needed() {
				c.acted, c.actedAt = true, t
			}
			return false
		}
		if frontal {
			c.done, c.doneAt = true, t
		}
	case Blink:
		if b.eyeOpen <= 0 {
			return false
		}
		share := f.EyeOpen / b.eyeOpen
		c.peak = math.Max(c.peak, 1-share)
		switch {
		case !c.closed && share < blinkClosed:
			c.closed, c.closedAt = true, t
		case c.closed && share > blinkOpen:
			if t-c.closedAt <= blinkMaxClosed {
				c.acted, c.actedAt = true, c.closedAt
				c.done, c.doneAt = true, t
			}
			c.closed = false
		}
	case Smile:
		if b.mouthWidth <= 0 {
			return false
		}
		share := f.MouthWidth / b.mouthWidth
		c.peak = math.Max(c.peak, share)
		if share >= smileWidth {
			if !c.smiling {
				c.smiling, c.smileSince = true, t
			}
			if t-c.smileSince >= smileHold {
				c.acted, c.actedAt = true, c.smileSince
				c.done, c.doneAt = true, t
			}
		} else {
			c.smiling = false
		}
	case MoveCloser:
		if c.startWidth <= 0 {
			return false
		}
		share := f.WidthPx / c.startWidth
		c.peak = math.Max(c.peak, share)
		if share >= closerWidth {
			c.acted, c.actedAt = true, t
			c.done, c.doneAt = true, t
		}
	}
	return c.done
}

// movement is how far a pose challenge has gone in its own direction.
func (c *challengeState) movement(b baseline, f *FaceFigures) float64 {
	switch c.code {
	case TurnLeft:
		return f.Yaw - b.yaw
	case TurnRight:
		return b.yaw - f.Yaw
	case LookUp:
		return f.Pitch - b.pitch
	case LookDown:
		return b.pitch - f.Pitch
	}
	return 0
}

func (c *challengeState) needed() float64 {
	if c.code == TurnLeft || c.code == TurnRight {
		return turnYaw
	}
	return tiltPitch
}

// figures are what the result reports of a challenge.
func (c *challengeState) figures() map[string]any {
	out := map[string]any{"code": c.code, "passed": c.done, "asked_at_ms": c.askedAt.Milliseconds()}
	if c.done {
		out["done_at_ms"] = c.doneAt.Milliseconds()
		out["performed_at_ms"] = c.actedAt.Milliseconds()
	}
	out["peak"] = round3(c.peak)
	return out
}

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }
