// Command moteval scores the camera's people tracking on MOTChallenge-style
// sequences (../shared/tracking): it runs our body detectors (OpenCV's HOG as
// the daemon configures it, and the CenterNet person class of body-detector)
// on every frame, feeds the same detections to the tracker the camera used
// before (greedy IoU) and to today's (ByteTrack-style), and prints CLEAR MOT
// and IDF1 side by side. The sequences are for evaluation only: nothing may
// be tuned on them.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"gocv.io/x/gocv"

	"imageapid/camera"
	"imageapid/estimators/body"
	"imageapid/internal/mot"
	"imageapid/models"
)

func main() {
	data := flag.String("data", "../shared/tracking", "folder of sequences (one folder each, with video.mp4, gt.txt, seqinfo.ini)")
	modelDir := flag.String("models", "models", "model folder (manifest.json and build/), for CenterNet")
	detectors := flag.String("detectors", "hog,centernet", "body detectors to run: hog, centernet")
	every := flag.String("every", "1", "comma-separated body_every values: run the detector on every n-th frame")
	flag.Parse()
	if err := run(context.Background(), os.Stdout, *data, *modelDir, strings.Split(*detectors, ","), *every); err != nil {
		fmt.Fprintln(os.Stderr, "moteval:", err)
		os.Exit(1)
	}
}

// sequence is one clip's frames' detections and ground truth.
type sequence struct {
	name   string
	fps    float64
	w, h   int
	truth  map[int][]mot.Object // 1-based frame -> boxes in pixels
	frames int
}

func run(ctx context.Context, out io.Writer, data, modelDir string, detectorNames []string, everyList string) error {
	var everies []int
	for _, s := range strings.Split(everyList, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return fmt.Errorf("-every %q: want positive integers", everyList)
		}
		everies = append(everies, n)
	}
	dirs, err := os.ReadDir(data)
	if err != nil {
		return fmt.Errorf("read %s: %w", data, err)
	}
	tw := tabwriter.NewWriter(out, 2, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "sequence\tdetector\tevery\ttracker\tIDF1\tMOTA\tMOTP\tIDsw\tFrag\tFP\tFN\tIDs\tMT\tML\t")
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		seq, err := loadSequence(filepath.Join(data, d.Name()))
		if err != nil {
			return err
		}
		for _, name := range detectorNames {
			det, closeDet, err := newDetector(name, modelDir)
			if err != nil {
				return err
			}
			start := time.Now()
			dets, err := detectAll(ctx, filepath.Join(data, d.Name(), "video.mp4"), det)
			closeDet()
			if err != nil {
				return fmt.Errorf("%s %s: %w", seq.name, name, err)
			}
			fmt.Fprintf(os.Stderr, "%s: %s detected %d frames in %.1fs\n", seq.name, name, len(dets), time.Since(start).Seconds())
			for _, n := range everies {
				for _, tr := range trackers(name) {
					r := mot.Evaluate(seq.score(tr.run(seq.fps, strided(dets, n))), 0.5)
					fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%.3f\t%.3f\t%.3f\t%d\t%d\t%d\t%d\t%d\t%d/%d\t%d\t\n", seq.name, name, n, tr.name,
						r.IDF1, r.MOTA, r.MOTP, r.IDSwitches, r.Frags, r.FalsePos, r.Misses, r.HypIDs, r.MostlyTrack, r.TruthIDs, r.MostlyLost)
				}
			}
		}
	}
	return tw.Flush()
}

func loadSequence(dir string) (*sequence, error) {
	seq := &sequence{name: filepath.Base(dir), fps: 25}
	ini, err := os.ReadFile(filepath.Join(dir, "seqinfo.ini"))
	if err != nil {
		return nil, fmt.Errorf("sequence %s: %w", dir, err)
	}
	for _, line := range strings.Split(string(ini), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok {
			continue
		}
		switch k {
		case "frameRate":
			seq.fps, _ = strconv.ParseFloat(v, 64)
		case "seqLength":
			seq.frames, _ = strconv.Atoi(v)
		case "imWidth":
			seq.w, _ = strconv.Atoi(v)
		case "imHeight":
			seq.h, _ = strconv.Atoi(v)
		}
	}
	if seq.fps <= 0 || seq.frames <= 0 || seq.w <= 0 || seq.h <= 0 {
		return nil, fmt.Errorf("sequence %s: seqinfo.ini lacks frameRate, seqLength, imWidth or imHeight", dir)
	}
	f, err := os.Open(filepath.Join(dir, "gt.txt"))
	if err != nil {
		return nil, fmt.Errorf("sequence %s: %w", dir, err)
	}
	defer f.Close()
	if seq.truth, err = mot.ReadMOT(f); err != nil {
		return nil, fmt.Errorf("sequence %s: %w", dir, err)
	}
	return seq, nil
}

// score pairs the tracker's boxes per frame (normalized) with the truth.
func (s *sequence) score(hyp [][]tracked) []mot.Frame {
	frames := make([]mot.Frame, s.frames)
	for i := range frames {
		frames[i].Truth = s.truth[i+1]
		if i >= len(hyp) {
			continue
		}
		for _, t := range hyp[i] {
			w, h := float64(s.w), float64(s.h)
			frames[i].Hyp = append(frames[i].Hyp, mot.Object{ID: t.id,
				Box: mot.Box{X: t.box[0] * w, Y: t.box[1] * h, W: t.box.Width() * w, H: t.box.Height() * h}})
		}
	}
	return frames
}

func newDetector(name, modelDir string) (camera.Detector, func(), error) {
	switch name {
	case "hog":
		// As the daemon builds hog-people (daemon/analysis.go).
		h, err := camera.NewHOGPeople(camera.HOGPeopleConfig{Scale: 1.1})
		if err != nil {
			return nil, nil, err
		}
		return h, func() { h.Close() }, nil
	case "centernet":
		m, err := models.LoadManifest(filepath.Join(modelDir, "manifest.json"))
		if err != nil {
			return nil, nil, err
		}
		rt, err := models.NewRuntime(m, models.Options{Dir: filepath.Join(modelDir, "build"), Threads: 2, Pool: 1},
			slog.New(slog.DiscardHandler))
		if err != nil {
			return nil, nil, err
		}
		// Scores down to 0.1 feed the second association stage; the old
		// tracker sees only those at body-detector's default 0.2.
		d, err := body.New(rt, body.Config{Detector: "centernet", MinScore: 0.1})
		if err != nil {
			rt.Close()
			return nil, nil, err
		}
		return centerNet{d}, func() { rt.Close() }, nil
	}
	return nil, nil, fmt.Errorf("unknown detector %q (hog, centernet)", name)
}

// detection keeps the detector's score as found, which the tracker may not see.
type detection struct {
	camera.Detection
	raw float64
}

type centerNet struct{ d *body.Detector }

func (c centerNet) Detect(ctx context.Context, img gocv.Mat) ([]camera.Detection, error) {
	people, err := c.d.Detect(ctx, img)
	if err != nil {
		return nil, err
	}
	w, h := float64(img.Cols()), float64(img.Rows())
	out := make([]camera.Detection, len(people))
	for i, p := range people {
		out[i] = camera.Detection{Class: camera.ClassBody, Box: camera.Box{p.X1 / w, p.Y1 / h, p.X2 / w, p.Y2 / h}.Clamp(), Score: p.Score}
	}
	return out, nil
}

func detectAll(ctx context.Context, path string, det camera.Detector) ([][]detection, error) {
	vc, err := gocv.VideoCaptureFile(path)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	defer vc.Close()
	img := gocv.NewMat()
	defer img.Close()
	var all [][]detection
	for vc.Read(&img) && !img.Empty() {
		raw, err := det.Detect(ctx, img)
		if err != nil {
			return nil, err
		}
		frame := make([]detection, len(raw))
		for i, d := range raw {
			frame[i] = detection{Detection: d, raw: d.Score}
		}
		all = append(all, frame)
	}
	if len(all) == 0 {
		return nil, fmt.Errorf("%s: no frames decoded", path)
	}
	return all, nil
}

// strided keeps the detections of every n-th frame only (nil marks a frame
// the detector did not run on), as body_every does.
func strided(dets [][]detection, n int) [][]detection {
	out := make([][]detection, len(dets))
	for i := range dets {
		if i%n == 0 {
			out[i] = append([]detection{}, dets[i]...)
		}
	}
	return out
}

type tracked struct {
	id  int
	box camera.Box
}

type trackerRun struct {
	name string
	run  func(fps float64, dets [][]detection) [][]tracked
}

func trackers(detector string) []trackerRun {
	runs := []trackerRun{
		{"before", func(fps float64, dets [][]detection) [][]tracked { return runBaseline(detector, fps, dets) }},
		{"bytetrack", func(fps float64, dets [][]detection) [][]tracked { return runByteTrack(fps, dets) }},
	}
	if detector == "centernet" {
		// A camera's body-detector keeps the service's min_score (0.2), so
		// the daemon's tracker never sees the scores from 0.1 its second
		// stage could use.
		runs = append(runs, trackerRun{"bytetrack-0.2", func(fps float64, dets [][]detection) [][]tracked {
			return runByteTrack(fps, minScore(dets, 0.2))
		}})
	}
	return runs
}

// minScore keeps the detections scoring at least s.
func minScore(dets [][]detection, s float64) [][]detection {
	out := make([][]detection, len(dets))
	for i, frame := range dets {
		if frame == nil {
			continue
		}
		out[i] = []detection{}
		for _, d := range frame {
			if d.raw >= s {
				out[i] = append(out[i], d)
			}
		}
	}
	return out
}

func frameTime(i int, fps float64) time.Time {
	return time.Unix(0, 0).Add(time.Duration(float64(i) / fps * float64(time.Second)))
}

// ids numbers tracks 1, 2, ... and maps the trackers' string ids to them.
type ids struct {
	n  int
	of map[string]int
}

func (g *ids) next() string { g.n++; return strconv.Itoa(g.n) }

// runBaseline runs the old tracker as the camera ran it: body_every repeated
// the last detections on the frames between, scores were the detector's own
// (HOG margins; CenterNet from 0.2, body-detector's default), and a track's
// box was its last detection's, reported on the frames it matched once confirmed.
func runBaseline(detector string, fps float64, dets [][]detection) [][]tracked {
	g := &ids{}
	tr := newBaseline(baselineConfig{}, g.next)
	var last []camera.Detection
	out := make([][]tracked, len(dets))
	for i, frame := range dets {
		if frame != nil {
			last = last[:0]
			for _, d := range frame {
				if detector == "centernet" && d.raw < 0.2 {
					continue
				}
				dd := d.Detection
				dd.Score = d.raw
				last = append(last, dd)
			}
		}
		up := tr.Update(frameTime(i, fps), append([]camera.Detection(nil), last...))
		for _, m := range up.Matched {
			if m.Track.Confirmed {
				id, _ := strconv.Atoi(m.Track.ID)
				out[i] = append(out[i], tracked{id, m.Track.Box})
			}
		}
	}
	return out
}

// runByteTrack runs the camera's tracker as the camera runs it: frames the
// detector skipped are predicted, and the confirmed tracks seen (or
// predicted) on a frame are reported with their filtered box.
func runByteTrack(fps float64, dets [][]detection) [][]tracked {
	g := &ids{}
	tr := camera.NewTracker(camera.TrackerConfig{}, g.next)
	out := make([][]tracked, len(dets))
	for i, frame := range dets {
		var up camera.FrameUpdate
		if frame == nil {
			up = tr.Update(frameTime(i, fps), nil, camera.ClassBody)
		} else {
			ds := make([]camera.Detection, len(frame))
			for j, d := range frame {
				ds[j] = d.Detection
			}
			up = tr.Update(frameTime(i, fps), ds)
		}
		for _, t := range up.Visible {
			id, _ := strconv.Atoi(t.ID)
			out[i] = append(out[i], tracked{id, t.Box})
		}
	}
	return out
}
