package camera

import (
	"context"
	"encoding/base64"
	"image"
	"path/filepath"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"imageapid/estimators/face"
	"imageapid/estimators/facetemplate"
	"imageapid/internal/testenv"
)

// faceDetector is the camera's face detection as the daemon adapts it: the
// face pipeline, one pass per frame.
type faceDetector struct{ p *face.Pipeline }

func (f faceDetector) Detect(ctx context.Context, img gocv.Mat) ([]Detection, error) {
	dets, err := f.p.Detect(ctx, img)
	if err != nil {
		return nil, err
	}
	w, h := float64(img.Cols()), float64(img.Rows())
	out := make([]Detection, len(dets))
	for i, d := range dets {
		out[i] = Detection{Class: ClassFace, Box: Box{d.X1 / w, d.Y1 / h, d.X2 / w, d.Y2 / h}.Clamp(), Score: d.Score}
	}
	return out, nil
}

// templateAttributor is what face-detector-template-extractor adds to a
// face's best shot: the template of the largest face in the crop, as the
// base64 of a template blob.
type templateAttributor struct {
	p   *face.Pipeline
	emb *facetemplate.Embedder
}

func (a templateAttributor) Attributes(ctx context.Context, crop gocv.Mat, d Detection) (map[string]any, error) {
	if d.Class != ClassFace {
		return nil, nil
	}
	vec, err := facetemplate.LargestFace(ctx, a.p, a.emb, crop)
	if err != nil || vec == nil {
		return nil, err
	}
	return map[string]any{"template": base64.StdEncoding.EncodeToString(facetemplate.Encode(a.emb.ModelID(), vec))}, nil
}

// person is a corpus photo drawn on a synthetic frame, its centre at x, y
// (normalized) and side px pixels.
type person struct {
	name  string // who, for the test's bookkeeping
	photo gocv.Mat
	x, y  float64
	px    int
}

// scene draws people (the later ones in front) on a plain 640x480 frame.
func scene(t testing.TB, people []person) gocv.Mat {
	t.Helper()
	img := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(120, 125, 130, 0), 480, 640, gocv.MatTypeCV8UC3)
	for _, p := range people {
		r := image.Rect(int(p.x*640)-p.px/2, int(p.y*480)-p.px/2, int(p.x*640)+p.px/2, int(p.y*480)+p.px/2)
		if r.Min.X < 0 || r.Min.Y < 0 || r.Max.X > 640 || r.Max.Y > 480 {
			t.Fatalf("%s drawn outside the frame at %v", p.name, r)
		}
		small := gocv.NewMat()
		gocv.Resize(p.photo, &small, image.Pt(p.px, p.px), 0, 0, gocv.InterpolationArea)
		region := img.Region(r)
		small.CopyTo(&region)
		region.Close()
		small.Close()
	}
	return img
}

// faceRun plays frames at 10 fps through a camera's analysis (the face
// detector, the tracker, best shots, the attributor) and returns, per frame,
// the confirmed track seen nearest each person drawn, and the track_new events.
type faceRun struct {
	ids    []map[string]string // frame -> person -> track id ("" when none)
	newIDs []string
}

func runFaces(t *testing.T, det Detector, attr Attributor, frames [][]person) faceRun {
	t.Helper()
	cfg := Config{ID: "faces", URL: "file:///dev/null"}.withDefaults()
	c := &Camera{cfg: cfg, an: Analysis{Detectors: []Detector{det}, Attributor: attr, Quality: ScoreAreaQuality},
		log: testLogger(t), ids: newIDGen(), tap: newTap(), events: make(chan Event, 1000)}
	a := &analyser{c: c, tracker: NewTracker(cfg.Tracker, c.ids.next), zones: newZoneKeeper(nil, nil, 0),
		shots: map[string]*trackShot{}, wantCrops: attr != nil}
	defer func() {
		for _, s := range a.shots {
			s.close()
		}
	}()
	var run faceRun
	t0 := time.Unix(1000, 0)
	for i, people := range frames {
		img := scene(t, people)
		now := t0.Add(time.Duration(i) * 100 * time.Millisecond)
		a.analyse(context.Background(), &frame{mat: img, time: now})
		img.Close()
		seen := map[string]string{}
		for _, tk := range a.tracker.Tracks() {
			if !tk.Confirmed || !tk.LastSeen.Equal(now) {
				continue
			}
			cx, cy := (tk.Box[0]+tk.Box[2])/2, (tk.Box[1]+tk.Box[3])/2
			best, bestD := "", 0.01 // within 0.1 of a drawn centre
			for _, p := range people {
				if d := (cx-p.x)*(cx-p.x) + (cy-p.y)*(cy-p.y); d < bestD {
					best, bestD = p.name, d
				}
			}
			if best != "" {
				seen[best] = tk.ID
			}
		}
		run.ids = append(run.ids, seen)
	}
	a.endTracks(a.tracker.Flush(), "stopped")
	close(c.events)
	for e := range c.events {
		if e.Type == TrackNew {
			run.newIDs = append(run.newIDs, e.TrackID)
		}
	}
	return run
}

// idsOf lists the distinct track ids person had over frames [from, to).
func (r faceRun) idsOf(name string, from, to int) []string {
	var ids []string
	for _, seen := range r.ids[from:to] {
		if id := seen[name]; id != "" && (len(ids) == 0 || ids[len(ids)-1] != id) {
			ids = append(ids, id)
		}
	}
	return ids
}

// Real faces (two people of ../shared/corpus, photos pasted on a synthetic
// frame, BlazeFace and MobileFaceNet as the daemon runs them): the template
// of a face track's best shot keeps a returning person's id and keeps
// another person from taking a lost track's id. These two scenes are run
// without the cue too (no attributor), where motion alone gets them wrong.
func TestFaceTemplateCue(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the face networks")
	}
	corpus := testenv.Shared(t, "corpus")
	rt := testenv.Runtime(t, "")
	camFaces, err := face.New(rt, face.Config{Tiling: "off", BorderPass: "off", CloseUp: "off"})
	if err != nil {
		t.Fatal(err)
	}
	shotFaces, err := face.New(rt, face.Config{})
	if err != nil {
		t.Fatal(err)
	}
	emb, err := facetemplate.NewEmbedder(rt, facetemplate.DefaultNetwork, false)
	if err != nil {
		t.Fatal(err)
	}
	photo := func(name string) gocv.Mat {
		img := gocv.IMRead(filepath.Join(corpus, "identities", name), gocv.IMReadColor)
		if img.Empty() {
			t.Fatalf("cannot read corpus photo %s", name)
		}
		t.Cleanup(func() { img.Close() })
		return img
	}
	gore1, gore2 := photo("al_gore/al_gore_0001.jpg"), photo("al_gore/al_gore_0004.jpg")
	roddick := photo("andy_roddick/andy_roddick_0001.jpg")
	det, attr := faceDetector{camFaces}, templateAttributor{shotFaces, emb}

	// 1. A person walks right, leaves the view for 1 s (under the 2 s TTL)
	// and walks back in elsewhere, seen in another photo: in the far corner,
	// where even the match buffer a lost track gets by then (growing with
	// the time since its last match) does not reach.
	var back [][]person
	for i := 0; i < 40; i++ {
		switch {
		case i < 15:
			back = append(back, []person{{"gore", gore1, 0.2 + 0.01*float64(i), 0.25, 200}})
		case i < 25:
			back = append(back, nil)
		default:
			back = append(back, []person{{"gore", gore2, 0.82 - 0.01*float64(i-25), 0.75, 200}})
		}
	}
	// 2. A person stands, walks off for 0.5 s, and someone else steps into
	// the same place.
	var swap [][]person
	for i := 0; i < 35; i++ {
		switch {
		case i < 15:
			swap = append(swap, []person{{"gore", gore1, 0.45 + 0.002*float64(i), 0.45, 240}})
		case i < 20:
			swap = append(swap, nil)
		default:
			swap = append(swap, []person{{"roddick", roddick, 0.48, 0.45, 240}})
		}
	}

	// 3. Two people walk towards each other, the one in front hides the
	// other's face (for about 1.5 s: the photos overlap), and both turn back
	// the way they came. The buffered overlap alone takes the hidden one
	// back here, so this scene checks that the cue does no harm.
	var cross [][]person
	for i := 0; i < 36; i++ {
		x := 0.018 * float64(i) // 12 frames on, 4 together, then back
		switch {
		case i >= 16:
			x = max(0.216-0.018*float64(i-16), 0)
		case i >= 12:
			x = 0.216
		}
		cross = append(cross, []person{{"gore", gore1, 0.22 + x, 0.45, 240}, {"roddick", roddick, 0.78 - x, 0.45, 240}})
	}

	t.Run("people crossing keep their ids", func(t *testing.T) {
		with := runFaces(t, det, attr, cross)
		without := runFaces(t, det, nil, cross)
		g, r := with.idsOf("gore", 0, 36), with.idsOf("roddick", 0, 36)
		t.Logf("with the cue: %v and %v, track_new %v; without: %v and %v, track_new %v", g, r, with.newIDs,
			without.idsOf("gore", 0, 36), without.idsOf("roddick", 0, 36), without.newIDs)
		if len(g) != 1 || len(r) != 1 || g[0] == r[0] || len(with.newIDs) != 2 {
			t.Errorf("with the template cue: tracks %v and %v, %d track_new; want one id each, each announced once", g, r, len(with.newIDs))
		}
	})
	t.Run("returning person keeps the id", func(t *testing.T) {
		with := runFaces(t, det, attr, back)
		without := runFaces(t, det, nil, back)
		t.Logf("with the cue: ids %v, track_new %v; without: ids %v, track_new %v",
			with.idsOf("gore", 0, 40), with.newIDs, without.idsOf("gore", 0, 40), without.newIDs)
		if ids := with.idsOf("gore", 0, 40); len(ids) != 1 || len(with.newIDs) != 1 {
			t.Errorf("with the template cue: the person had tracks %v, %d track_new; want one id, announced once", ids, len(with.newIDs))
		}
		if ids := without.idsOf("gore", 0, 40); len(ids) < 2 {
			t.Errorf("without the cue the person kept one id %v: the scene does not test the cue", ids)
		}
	})
	t.Run("another person does not take the id", func(t *testing.T) {
		with := runFaces(t, det, attr, swap)
		without := runFaces(t, det, nil, swap)
		first, second := with.idsOf("gore", 0, 15), with.idsOf("roddick", 15, 35)
		t.Logf("with the cue: %v then %v, track_new %v; without: %v then %v, track_new %v", first, second, with.newIDs,
			without.idsOf("gore", 0, 15), without.idsOf("roddick", 15, 35), without.newIDs)
		if len(first) != 1 || len(second) != 1 || first[0] == second[0] || len(with.newIDs) != 2 {
			t.Errorf("with the template cue: tracks %v then %v, %d track_new; want two ids, each announced once", first, second, len(with.newIDs))
		}
		if a, b := without.idsOf("gore", 0, 15), without.idsOf("roddick", 15, 35); len(a) != 1 || len(b) != 1 || a[0] != b[0] {
			t.Errorf("without the cue the second person got their own track (%v, %v): the scene does not test the cue", a, b)
		}
	})
}
