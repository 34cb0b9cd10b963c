package camera

import (
	"errors"
	"fmt"
	"time"
)

// Config describes one camera. Zero values take the defaults in brackets.
type Config struct {
	ID   string `yaml:"id"`
	Name string `yaml:"name"`
	// URL names the source; see Source for the accepted forms.
	URL string `yaml:"url"`
	// Loop replays a file source when it ends (file URLs may say ?loop=true).
	Loop bool `yaml:"loop"`
	// MaxFPS caps the frames analysed per second [0: no cap]. A live source
	// is still read at its own rate, and the frames over the cap are skipped;
	// a file that is not live is read at the cap.
	MaxFPS float64 `yaml:"max_fps"`
	// Estimators names what to run on this camera; the BuildFunc given to
	// the Manager turns the names into detectors and attributors.
	Estimators []string `yaml:"estimators"`
	// BodyInterval runs body detectors at most once per this much frame
	// time (the frames' capture times), the tracker moving their tracks by
	// their motion in between: people detectors cost several times a face
	// detector. A camera whose analysis falls behind drops frames, but still
	// detects bodies at this pace as far as it can [0: every frame].
	BodyInterval time.Duration `yaml:"body_interval"`
	// BodyEvery is the older form of BodyInterval: body detectors run once
	// per n frames of the source, dropped frames included (it counted
	// analysed frames before, which slowed detection down on a loaded box).
	// Only one of the two may be set [1: every frame].
	BodyEvery int `yaml:"body_every"`

	// Identify names a watchlist to identify each face track's best shots
	// against; their events then carry "identity" in their attributes.
	Identify IdentifyConfig `yaml:"identify"`

	// Zones and Lines are named regions and counting lines of the view, in
	// normalized coordinates; CountHold is how long a track unseen still
	// counts in a zone's occupancy [1s].
	Zones     []ZoneConfig  `yaml:"zones"`
	Lines     []LineConfig  `yaml:"lines"`
	CountHold time.Duration `yaml:"count_hold"`

	Tracker    TrackerConfig   `yaml:"tracker"`
	Events     EventConfig     `yaml:"events"`
	Attributes AttributeConfig `yaml:"attributes"`
	Reconnect  BackoffConfig   `yaml:"reconnect"`
}

// IdentifyConfig names the watchlist a camera identifies faces against.
type IdentifyConfig struct {
	List string `yaml:"list"`
}

// EventConfig tunes what a camera publishes.
type EventConfig struct {
	// UpdateInterval is the least time between two track_update events of a
	// track [1s]; negative turns track_update off.
	UpdateInterval time.Duration `yaml:"update_interval"`
	// PublishTimeout bounds one EventSink.Publish call, and how long analysis
	// waits for room in the event queue before dropping an event [2s].
	PublishTimeout time.Duration `yaml:"publish_timeout"`
	// QueueSize bounds the events waiting for the sink [256].
	QueueSize int `yaml:"queue_size"`
	// Templates keeps attribute keys listed in PrivateKeys in events [false].
	Templates bool `yaml:"templates"`
	// PrivateKeys are attribute keys left out of events unless Templates is on ["template"].
	PrivateKeys []string `yaml:"private_keys"`
	// BestShotJPEG puts a JPEG of the best shot in events [false].
	BestShotJPEG bool `yaml:"best_shot_jpeg"`
}

// AttributeConfig says when a track's attributes are computed on its best
// shot: when the track is confirmed, when the best shot's quality grows by
// MinGain after MinInterval, and when the track ends if the best shot changed.
type AttributeConfig struct {
	MinInterval time.Duration `yaml:"min_interval"` // [2s]
	MinGain     float64       `yaml:"min_gain"`     // quality ratio counted as notably better [1.25]
	// Margin widens the best-shot crop on each side, as a fraction of the box [0.25].
	Margin  float64       `yaml:"margin"`
	Timeout time.Duration `yaml:"timeout"` // per Attributes call [5s]
}

// BackoffConfig bounds the wait between reconnection attempts, which
// doubles from Min to Max after each failure [250ms, 3s].
type BackoffConfig struct {
	Min time.Duration `yaml:"min"`
	Max time.Duration `yaml:"max"`
}

func (c Config) withDefaults() Config {
	c.Tracker = c.Tracker.withDefaults()
	if c.CountHold <= 0 {
		c.CountHold = time.Second
	}
	if c.Events.UpdateInterval == 0 {
		c.Events.UpdateInterval = time.Second
	}
	if c.Events.PublishTimeout <= 0 {
		c.Events.PublishTimeout = 2 * time.Second
	}
	if c.Events.QueueSize <= 0 {
		c.Events.QueueSize = 256
	}
	if c.Events.PrivateKeys == nil {
		c.Events.PrivateKeys = []string{"template"}
	}
	if c.Attributes.MinInterval <= 0 {
		c.Attributes.MinInterval = 2 * time.Second
	}
	if c.Attributes.MinGain <= 1 {
		c.Attributes.MinGain = 1.25
	}
	if c.Attributes.Margin <= 0 {
		c.Attributes.Margin = 0.25
	}
	if c.Attributes.Timeout <= 0 {
		c.Attributes.Timeout = 5 * time.Second
	}
	if c.Reconnect.Min <= 0 {
		c.Reconnect.Min = 250 * time.Millisecond
	}
	if c.Reconnect.Max <= 0 {
		c.Reconnect.Max = 3 * time.Second
	}
	c.Reconnect.Max = max(c.Reconnect.Max, c.Reconnect.Min)
	return c
}

// Validate checks what can be checked without opening the source.
func (c Config) Validate() error {
	if c.ID == "" {
		return errors.New("camera: empty id")
	}
	if c.BodyEvery < 0 {
		return fmt.Errorf("camera %s: negative body_every %d", c.ID, c.BodyEvery)
	}
	if c.BodyInterval < 0 {
		return fmt.Errorf("camera %s: negative body_interval %v", c.ID, c.BodyInterval)
	}
	if c.BodyInterval > 0 && c.BodyEvery > 1 {
		return fmt.Errorf("camera %s: body_interval and body_every both set (body_every is the older form: keep one)", c.ID)
	}
	if c.MaxFPS < 0 {
		return fmt.Errorf("camera %s: negative max_fps %g", c.ID, c.MaxFPS)
	}
	if err := validateZones(c.Zones, c.Lines); err != nil {
		return fmt.Errorf("camera %s: %w", c.ID, err)
	}
	if _, err := ParseSource(c.URL, c.Loop); err != nil {
		return fmt.Errorf("camera %s: %w", c.ID, err)
	}
	return nil
}

// BodyCadence is when the camera's body detectors run (body_interval, or
// the older body_every).
func (c Config) BodyCadence() Cadence {
	return Cadence{Interval: c.BodyInterval, Every: c.BodyEvery}
}
