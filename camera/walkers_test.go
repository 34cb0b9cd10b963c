package camera

import (
	"context"
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

// Real detections on the sample clip, as `make run` has them (the body
// detector on every 4th frame, the tracker predicting the frames between),
// with the sample camera's body-detector (CenterNet, at the service's
// min_score) and with hog-people: at most 1.3 announced tracks per person,
// and no announced track shorter than the confirmation window (MinHits
// detections 0.4 s apart).
func TestVtestTracksPerPerson(t *testing.T) {
	if testing.Short() {
		t.Skip("decodes 60 s of video")
	}
	t.Run("body-detector", func(t *testing.T) {
		d, err := bodydet.New(testenv.Runtime(t, ""), bodydet.Config{Detector: "centernet"})
		if err != nil {
			t.Fatal(err)
		}
		vtestTracksPerPerson(t, centerNet{d})
	})
	t.Run("hog-people", func(t *testing.T) {
		vtestTracksPerPerson(t, newHOG(t, HOGPeopleConfig{Scale: 1.1}))
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

func vtestTracksPerPerson(t *testing.T, det Detector) {
	vc, err := gocv.VideoCaptureFile(testenv.Fixture(t, "vtest.avi"))
	if err != nil {
		t.Fatal(err)
	}
	defer vc.Close()
	tr := NewTracker(TrackerConfig{}, counterIDs())
	img := gocv.NewMat()
	defer img.Close()
	t0 := time.Unix(1000, 0)
	var announced, ended []*Track
	for i := 0; i < 600; i++ {
		if !vc.Read(&img) || img.Empty() {
			t.Fatalf("vtest.avi ended at frame %d", i)
		}
		now := t0.Add(time.Duration(i) * 100 * time.Millisecond)
		var up FrameUpdate
		if i%4 == 0 {
			dets, err := det.Detect(context.Background(), img)
			if err != nil {
				t.Fatal(err)
			}
			up = tr.Update(now, dets)
		} else {
			up = tr.Update(now, nil, ClassBody)
		}
		announced = append(announced, up.Confirmed...)
		ended = append(ended, up.Ended...)
	}
	ended = append(ended, tr.Flush()...)
	window := time.Duration(tr.cfg.MinHits-1) * 400 * time.Millisecond
	short := 0
	for _, tk := range ended {
		if span := tk.LastSeen.Sub(tk.FirstSeen); span < window || tk.Hits < tr.cfg.MinHits {
			short++
			t.Errorf("track %s: %d hits over %v, under the confirmation window (%d hits, %v)", tk.ID, tk.Hits, span, tr.cfg.MinHits, window)
		}
	}
	if len(ended) != len(announced) {
		t.Errorf("%d tracks announced, %d ended", len(announced), len(ended))
	}
	perPerson := float64(len(announced)) / vtestCrossings
	var starts []string
	for _, tk := range announced {
		starts = append(starts, fmt.Sprintf("%.1f", tk.FirstSeen.Sub(t0).Seconds()))
	}
	t.Logf("%d tracks for %d people: %.2f per person; %d shorter than the confirmation window; first seen at %v s",
		len(announced), vtestCrossings, perPerson, short, starts)
	if perPerson > 1.3 {
		t.Errorf("%d tracks for %d people: %.2f per person, want at most 1.3", len(announced), vtestCrossings, perPerson)
	}
}
