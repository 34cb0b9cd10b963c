package camera

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"gocv.io/x/gocv"

	bodydet "imageapid/estimators/body"
	"imageapid/internal/testenv"
)

// vtestCrossings is how many times a person walks into the view in the first
// 60 s of vtest.avi (10 fps), counted by hand once: frames 1 s apart laid out
// in 3x3 contact sheets (ffmpeg fps=1,tile=3x3), each person followed by
// clothing and path, counting the 3 people in view at 0 s and each entry
// from an edge after (including the small figures on the far path at the
// top, and a pair that leaves on the right and walks back in at the bottom,
// which counts twice). Entries by time: 0 s 3; 1-14 s 7; 21-28 s 6; 42 s 1;
// 46-53 s 4; 53-57 s 3. People turn and mingle in this clip, so the count is
// uncertain by a few either way; 24 is the best reading.
const vtestCrossings = 24

// vtestInterval is the sample camera's body_interval.
const vtestInterval = 400 * time.Millisecond

// Real detections on the sample clip, as `make run` has them (the body
// detector paced at body_interval 0.4 s by Paced, the tracker predicting the
// frames between), with the sample camera's body-detector (CenterNet, at the
// service's min_score) and with hog-people, on an idle box and on loaded
// ones: every frame analysed; every 2nd or 3rd (the others dropped before
// analysis); and analysis that takes 0.15 s a frame plus 0.45 s when the
// body detector runs, each time taking the newest frame read by then (about
// what a box at load 13-16 did: a body detection every 0.6-0.7 s). Each time
// at least 0.77 and at most 1.3 announced tracks per person, and no
// announced track shorter than the confirmation window (MinHits detections
// body_interval apart).
func TestVtestTracksPerPerson(t *testing.T) {
	if testing.Short() {
		t.Skip("decodes 60 s of video")
	}
	all := []vtestLoad{{name: "every frame", step: 1}, {name: "every 2nd frame", step: 2},
		{name: "every 3rd frame", step: 3}, {name: "slow analysis", frameCost: 0.15, bodyCost: 0.45}}
	t.Run("body-detector", func(t *testing.T) {
		d, err := bodydet.New(testenv.Runtime(t, ""), bodydet.Config{Detector: "centernet"})
		if err != nil {
			t.Fatal(err)
		}
		vtestTracksPerPerson(t, centerNet{d}, all)
	})
	t.Run("hog-people", func(t *testing.T) {
		// HOG costs several times CenterNet here: the idle box and the slowest load.
		vtestTracksPerPerson(t, newHOG(t, HOGPeopleConfig{Scale: 1.1}), []vtestLoad{all[0], all[3]})
	})
}

// centerNet is the body-detector service's CenterNet person class as a
// camera detector.
type centerNet struct{ d *bodydet.Detector }

func (c centerNet) Detect(ctx context.Context, img gocv.Mat) ([]Detection, error) {
	people, err := c.d.Detect(ctx, img)
	if err != nil {
		return nil, err
	}
	w, h := float64(img.Cols()), float64(img.Rows())
	out := make([]Detection, len(people))
	for i, p := range people {
		out[i] = Detection{Class: ClassBody, Box: Box{p.X1 / w, p.Y1 / h, p.X2 / w, p.Y2 / h}.Clamp(), Score: p.Score}
	}
	return out, nil
}

// vtestLoad is which frames of the clip a camera analyses: every step-th,
// or, when frameCost is set, the newest frame read when the analysis of
// the last one ended, which took frameCost seconds plus bodyCost when the
// body detector ran.
type vtestLoad struct {
	name                string
	step                int
	frameCost, bodyCost float64
}

// vtestRun is one load's camera: its paced detector and tracker.
type vtestRun struct {
	load      vtestLoad
	det       Detector
	tr        *Tracker
	next      int     // the next frame it analyses
	busyUntil float64 // seconds of video: when its last analysis ended
	analysed  int
	detected  int
	announced []*Track
	ended     []*Track
}

// frameDetector runs a detector once per frame of the clip, however many
// of the loads' cameras ask for its detections.
type frameDetector struct {
	inner Detector
	frame int
	have  int // frame of dets, -1 for none
	dets  []Detection
}

func (f *frameDetector) Detect(ctx context.Context, img gocv.Mat) ([]Detection, error) {
	if f.have != f.frame {
		dets, err := f.inner.Detect(ctx, img)
		if err != nil {
			return nil, err
		}
		f.dets, f.have = dets, f.frame
	}
	return append([]Detection(nil), f.dets...), nil
}

func vtestTracksPerPerson(t *testing.T, det Detector, loads []vtestLoad) {
	vc, err := gocv.VideoCaptureFile(testenv.Fixture(t, "vtest.avi"))
	if err != nil {
		t.Fatal(err)
	}
	defer vc.Close()
	shared := &frameDetector{inner: det, have: -1}
	var runs []*vtestRun
	for _, l := range loads {
		runs = append(runs, &vtestRun{load: l, det: Paced(shared, ClassBody, Cadence{Interval: vtestInterval}),
			tr: NewTracker(TrackerConfig{}, counterIDs())})
	}
	img := gocv.NewMat()
	defer img.Close()
	t0 := time.Unix(1000, 0)
	const frames, fps = 600, 10
	for i := 0; i < frames; i++ {
		if !vc.Read(&img) || img.Empty() {
			t.Fatalf("vtest.avi ended at frame %d", i)
		}
		shared.frame = i
		now := t0.Add(time.Duration(i) * time.Second / fps)
		for _, r := range runs {
			if i != r.next {
				continue
			}
			r.analysed++
			dets, err := r.det.(FrameDetector).DetectFrame(context.Background(), img, now, uint64(i+1))
			var up FrameUpdate
			if errors.As(err, new(Skipped)) {
				up = r.tr.Update(now, nil, ClassBody)
			} else if err != nil {
				t.Fatal(err)
			} else {
				r.detected++
				up = r.tr.Update(now, dets)
			}
			r.announced = append(r.announced, up.Confirmed...)
			r.ended = append(r.ended, up.Ended...)
			if r.load.step > 0 {
				r.next = i + r.load.step
				continue
			}
			cost := r.load.frameCost
			if err == nil {
				cost += r.load.bodyCost
			}
			r.busyUntil = max(r.busyUntil, float64(i)/fps) + cost
			r.next = max(int(r.busyUntil*fps), i+1)
		}
	}
	for _, r := range runs {
		tr := r.tr
		ended := append(r.ended, tr.Flush()...)
		window := time.Duration(tr.cfg.MinHits-1) * vtestInterval
		short := 0
		for _, tk := range ended {
			if span := tk.LastSeen.Sub(tk.FirstSeen); span < window || tk.Hits < tr.cfg.MinHits {
				short++
				t.Errorf("%s: track %s: %d hits over %v, under the confirmation window (%d hits, %v)",
					r.load.name, tk.ID, tk.Hits, span, tr.cfg.MinHits, window)
			}
		}
		if len(ended) != len(r.announced) {
			t.Errorf("%s: %d tracks announced, %d ended", r.load.name, len(r.announced), len(ended))
		}
		perPerson := float64(len(r.announced)) / vtestCrossings
		var starts []string
		for _, tk := range r.announced {
			starts = append(starts, fmt.Sprintf("%.1f", tk.FirstSeen.Sub(t0).Seconds()))
		}
		t.Logf("%s: %d frames analysed, %d body detections; %d tracks for %d people: %.2f per person; %d shorter than the confirmation window; first seen at %v s",
			r.load.name, r.analysed, r.detected, len(r.announced), vtestCrossings, perPerson, short, starts)
		if perPerson < 0.77 || perPerson > 1.3 {
			t.Errorf("%s: %d tracks for %d people: %.2f per person, want 0.77 to 1.3", r.load.name, len(r.announced), vtestCrossings, perPerson)
		}
	}
}
