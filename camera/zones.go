package camera

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"time"
)

// Point is a position normalized to the frame: [x, y], each in [0, 1].
type Point [2]float64

// ZoneConfig is a named region of a camera's view. A track is in a zone
// while its reference point (the bottom centre of its box, where a person
// stands) is inside the polygon.
type ZoneConfig struct {
	Name    string  `yaml:"name"`
	Polygon []Point `yaml:"polygon"` // at least 3 corners, in order
	// Classes are the track classes the zone follows [body].
	Classes []string `yaml:"classes"`
}

// LineConfig is a named counting line from From to To. A track crosses it
// when its reference point's path between two frames cuts the segment; the
// direction is "left_to_right" when the point went from the left of the
// line to its right as seen looking from From towards To, else "right_to_left".
type LineConfig struct {
	Name    string   `yaml:"name"`
	From    Point    `yaml:"from"`
	To      Point    `yaml:"to"`
	Classes []string `yaml:"classes"` // [body]
}

// Directions a line is crossed in.
const (
	LeftToRight = "left_to_right"
	RightToLeft = "right_to_left"
)

// LineCount is how many tracks crossed a line each way since the camera started.
type LineCount struct {
	LeftToRight int `json:"left_to_right"`
	RightToLeft int `json:"right_to_left"`
	Total       int `json:"total"`
}

var zoneName = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

func validPoint(p Point) bool { return p[0] >= 0 && p[0] <= 1 && p[1] >= 0 && p[1] <= 1 }

func validateZones(zones []ZoneConfig, lines []LineConfig) error {
	seen := map[string]bool{}
	name := func(kind, n string) error {
		if !zoneName.MatchString(n) {
			return fmt.Errorf("%s name %q: use letters, digits, '-' and '_'", kind, n)
		}
		if seen[kind+n] {
			return fmt.Errorf("%s %q listed twice", kind, n)
		}
		seen[kind+n] = true
		return nil
	}
	for _, z := range zones {
		if err := name("zone", z.Name); err != nil {
			return err
		}
		if len(z.Polygon) < 3 {
			return fmt.Errorf("zone %q: %d corners, want at least 3", z.Name, len(z.Polygon))
		}
		for _, p := range z.Polygon {
			if !validPoint(p) {
				return fmt.Errorf("zone %q: corner %v is outside [0, 1]", z.Name, p)
			}
		}
	}
	for _, l := range lines {
		if err := name("line", l.Name); err != nil {
			return err
		}
		if !validPoint(l.From) || !validPoint(l.To) {
			return fmt.Errorf("line %q: an end is outside [0, 1]", l.Name)
		}
		if l.From == l.To {
			return errors.New("line " + l.Name + ": from and to are the same point")
		}
	}
	return nil
}

func followsClass(classes []string, class string) bool {
	if len(classes) == 0 {
		return class == ClassBody
	}
	return slices.Contains(classes, class)
}

// anchor is a box's reference point: the bottom centre, kept in the frame
// (a predicted box may reach past its edge).
func anchor(b Box) Point {
	return Point{min(max((b[0]+b[2])/2, 0), 1), min(max(b[3], 0), 1)}
}

// inside reports whether p is in the polygon (even-odd rule) or on its edge.
func inside(poly []Point, p Point) bool {
	in := false
	for i, j := 0, len(poly)-1; i < len(poly); j, i = i, i+1 {
		a, b := poly[i], poly[j]
		if abs(side(a, b, p)) < 1e-12 && p[0] >= min(a[0], b[0]) && p[0] <= max(a[0], b[0]) &&
			p[1] >= min(a[1], b[1]) && p[1] <= max(a[1], b[1]) {
			return true
		}
		if (a[1] > p[1]) != (b[1] > p[1]) && p[0] < (b[0]-a[0])*(p[1]-a[1])/(b[1]-a[1])+a[0] {
			in = !in
		}
	}
	return in
}

// side is positive when p is right of the line a->b as seen looking from a
// to b in image coordinates (y grows downwards), negative when left.
func side(a, b, p Point) float64 {
	return (b[0]-a[0])*(p[1]-a[1]) - (b[1]-a[1])*(p[0]-a[0])
}

// crossing reports whether the step p->q cuts the segment a-b, and which way.
func crossing(a, b, p, q Point) (string, bool) {
	sp, sq := side(a, b, p), side(a, b, q)
	if sp == 0 || sq == 0 || (sp > 0) == (sq > 0) {
		return "", false
	}
	if sa, sb := side(p, q, a), side(p, q, b); (sa > 0) == (sb > 0) && sa != 0 && sb != 0 {
		return "", false
	}
	if sp < 0 {
		return LeftToRight, true
	}
	return RightToLeft, true
}

// zoneEvent is a zone or line event due for a track.
type zoneEvent struct {
	typ       EventType
	zone      string
	line      string
	direction string
}

// trackPlaces is what the zones know about one confirmed track.
type trackPlaces struct {
	in        map[string]bool // zones it is in now
	entered   map[string]bool // zones it has had zone_enter for
	exited    map[string]bool
	crossed   map[string]bool // lines it has had line_cross for
	last      Point
	hasLast   bool
	lastSeen  time.Time
	confirmed bool
}

// zoneKeeper follows confirmed tracks through a camera's zones and lines.
type zoneKeeper struct {
	zones  []ZoneConfig
	lines  []LineConfig
	hold   time.Duration
	tracks map[string]*trackPlaces
	counts map[string]int
	lineN  map[string]LineCount
}

func newZoneKeeper(zones []ZoneConfig, lines []LineConfig, hold time.Duration) *zoneKeeper {
	k := &zoneKeeper{zones: zones, lines: lines, hold: hold, tracks: map[string]*trackPlaces{},
		counts: map[string]int{}, lineN: map[string]LineCount{}}
	for _, z := range zones {
		k.counts[z.Name] = 0
	}
	for _, l := range lines {
		k.lineN[l.Name] = LineCount{}
	}
	return k
}

func (k *zoneKeeper) empty() bool { return len(k.zones) == 0 && len(k.lines) == 0 }

// see moves a confirmed track to its box on this frame and returns the zone
// and line events that move is due, each at most once per track.
func (k *zoneKeeper) see(t *Track) []zoneEvent {
	if k.empty() {
		return nil
	}
	tp := k.tracks[t.ID]
	if tp == nil {
		tp = &trackPlaces{in: map[string]bool{}, entered: map[string]bool{}, exited: map[string]bool{}, crossed: map[string]bool{}}
		k.tracks[t.ID] = tp
	}
	tp.lastSeen = t.LastSeen
	p := anchor(t.Box)
	var evs []zoneEvent
	for _, z := range k.zones {
		if !followsClass(z.Classes, t.Class) {
			continue
		}
		now := inside(z.Polygon, p)
		switch {
		case now && !tp.in[z.Name] && !tp.entered[z.Name]:
			tp.entered[z.Name] = true
			evs = append(evs, zoneEvent{typ: ZoneEnter, zone: z.Name})
		case !now && tp.in[z.Name] && !tp.exited[z.Name]:
			tp.exited[z.Name] = true
			evs = append(evs, zoneEvent{typ: ZoneExit, zone: z.Name})
		}
		tp.in[z.Name] = now
	}
	if tp.hasLast {
		for _, l := range k.lines {
			if !followsClass(l.Classes, t.Class) || tp.crossed[l.Name] {
				continue
			}
			if dir, ok := crossing(l.From, l.To, tp.last, p); ok {
				tp.crossed[l.Name] = true
				n := k.lineN[l.Name]
				if dir == LeftToRight {
					n.LeftToRight++
				} else {
					n.RightToLeft++
				}
				n.Total++
				k.lineN[l.Name] = n
				evs = append(evs, zoneEvent{typ: LineCross, line: l.Name, direction: dir})
			}
		}
	}
	tp.last, tp.hasLast = p, true
	return evs
}

// zonesOf lists the zones track id is in, in config order.
func (k *zoneKeeper) zonesOf(id string) []string {
	tp := k.tracks[id]
	if tp == nil {
		return nil
	}
	var out []string
	for _, z := range k.zones {
		if tp.in[z.Name] {
			out = append(out, z.Name)
		}
	}
	return out
}

// end forgets a track and returns the zone_exit events still due for it.
func (k *zoneKeeper) end(id string) []zoneEvent {
	tp := k.tracks[id]
	if tp == nil {
		return nil
	}
	delete(k.tracks, id)
	var evs []zoneEvent
	for _, z := range k.zones {
		if tp.in[z.Name] && !tp.exited[z.Name] {
			evs = append(evs, zoneEvent{typ: ZoneExit, zone: z.Name})
		}
	}
	return evs
}

// recount sets each zone's occupancy at now: the tracks in it seen within
// the hold time, so a missed detection or two does not make it flicker. It
// reports whether a count changed.
func (k *zoneKeeper) recount(now time.Time) bool {
	changed := false
	for _, z := range k.zones {
		n := 0
		for _, tp := range k.tracks {
			if tp.in[z.Name] && now.Sub(tp.lastSeen) <= k.hold {
				n++
			}
		}
		if k.counts[z.Name] != n {
			k.counts[z.Name] = n
			changed = true
		}
	}
	return changed
}
