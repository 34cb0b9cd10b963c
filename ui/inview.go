package ui

import (
	"net/http"
	"sync"
	"time"
)

// InViewPath serves the faces and people each camera had in view lately.
const InViewPath = "/v1/in-view"

// InView remembers, per camera, how many faces and people it had in view
// (confirmed tracks alive) over the last Window, in Interval buckets: each
// bucket holds the most seen at once during it. Set is fed by the same
// event sink that updates the MQTT counts. Memory is fixed: Window/Interval
// buckets for at most maxInViewCameras cameras.
type InView struct {
	interval time.Duration
	buckets  int

	mu      sync.Mutex
	cameras map[string]*inViewRing
}

const maxInViewCameras = 64

type inViewBucket struct {
	index         int64 // unix time / interval
	faces, people int   // the most in view during the bucket
	valid         bool
}

type inViewRing struct {
	ring          []inViewBucket
	last          int64 // index of the newest bucket
	faces, people int   // in view now
}

// NewInView keeps window of history in interval steps.
func NewInView(window, interval time.Duration) *InView {
	n := max(1, int(window/interval))
	return &InView{interval: interval, buckets: n, cameras: map[string]*inViewRing{}}
}

// Set records that camera has faces and people in view now.
func (v *InView) Set(camera string, faces, people int, now time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	r := v.cameras[camera]
	if r == nil {
		if len(v.cameras) >= maxInViewCameras {
			return
		}
		r = &inViewRing{ring: make([]inViewBucket, v.buckets), last: v.index(now)}
		r.ring[r.last%int64(v.buckets)] = inViewBucket{index: r.last, valid: true}
		v.cameras[camera] = r
	}
	v.advance(r, now)
	b := &r.ring[r.last%int64(v.buckets)]
	r.faces, r.people = faces, people
	b.faces, b.people = max(b.faces, faces), max(b.people, people)
}

func (v *InView) index(t time.Time) int64 { return t.UnixNano() / int64(v.interval) }

// advance moves r to the bucket of now, filling skipped buckets with the
// counts that held through them.
func (v *InView) advance(r *inViewRing, now time.Time) {
	idx := v.index(now)
	if idx < r.last { // the clock stepped back: keep writing the newest bucket
		idx = r.last
	}
	for i := max(r.last+1, idx-int64(v.buckets)+1); i <= idx; i++ {
		r.ring[i%int64(v.buckets)] = inViewBucket{index: i, faces: r.faces, people: r.people, valid: true}
	}
	r.last = idx
}

// InViewSeries is one camera's history, oldest first.
type InViewSeries struct {
	Faces  []int `json:"faces"`
	People []int `json:"people"`
	// FacesNow and PeopleNow are in view at the time of the answer.
	FacesNow  int `json:"faces_now"`
	PeopleNow int `json:"people_now"`
}

// Snapshot returns every camera's series up to now.
func (v *InView) Snapshot(now time.Time) map[string]InViewSeries {
	v.mu.Lock()
	defer v.mu.Unlock()
	out := make(map[string]InViewSeries, len(v.cameras))
	for id, r := range v.cameras {
		v.advance(r, now)
		s := InViewSeries{Faces: make([]int, 0, v.buckets), People: make([]int, 0, v.buckets), FacesNow: r.faces, PeopleNow: r.people}
		for i := r.last - int64(v.buckets) + 1; i <= r.last; i++ {
			b := r.ring[i%int64(v.buckets)]
			if !b.valid || b.index != i {
				s.Faces, s.People = append(s.Faces, 0), append(s.People, 0)
				continue
			}
			s.Faces, s.People = append(s.Faces, b.faces), append(s.People, b.people)
		}
		out[id] = s
	}
	return out
}

// ServeHTTP answers GET /v1/in-view:
//
//	{"interval_s": 5, "cameras": {"<id>": {"faces": [...], "people": [...], "faces_now": 1, "people_now": 2}}}
func (v *InView) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		writeError(w, http.StatusMethodNotAllowed, "Method Not Allowed")
		return
	}
	writeJSON(w, map[string]any{"interval_s": v.interval.Seconds(), "cameras": v.Snapshot(time.Now())})
}
