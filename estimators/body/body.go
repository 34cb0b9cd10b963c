// Package body finds people in images, with one of two detectors: the
// person class of a COCO CenterNet (heatmap peaks, box sides, NMS), or
// MediaPipe's BlazePose person detector: SSD anchor decoding, weighted
// non-maximum suppression, tiling for small people, and the full-body box
// derived from the detector's keypoints (the detector itself boxes the face
// and gives the hip centre and a circle that holds the whole body).
//
// It works on gocv images and knows nothing about requests or JSON. A
// Detector is safe for concurrent use: it holds only read-only state, and
// each network run borrows an interpreter from the runtime's pool.
package body

import (
	"context"
	"errors"
	"fmt"
	"image"
	"math"
	"sort"
	"strings"

	"gocv.io/x/gocv"

	"imageapid/estimators/internal/letterbox"
	"imageapid/models"
)

// ModelName is the detector's entry in the model manifest.
const ModelName = "pose_detection"

// Point is a 2D point in image pixels.
type Point struct{ X, Y float64 }

// Person is one detected person, in pixels of the image (continuous
// coordinates: 0 is the left edge of the first pixel).
type Person struct {
	// X1..Y2 is the whole-body box, clipped to the image.
	X1, Y1, X2, Y2 float64
	Score          float64
	// Face is the box the detector regresses: the person's face.
	Face [4]float64
	// Keypoints are the detector's four: hip centre, a point whose distance
	// to the hip centre is the radius of a circle holding the whole body,
	// shoulder centre, and the same for the upper body.
	Keypoints [4]Point
	// Landmarks are the 33 BlazePose body landmarks and Presence the
	// landmark network's person probability (nil and 0 when landmarks are off).
	Landmarks []Landmark
	Presence  float64
}

// Config tunes detection. Zero values take the defaults.
type Config struct {
	// Detector picks the network: "centernet" (a COCO object detector's
	// person class; boxes come straight from the network, without face,
	// keypoints or landmarks), "movenet" (MoveNet MultiPose's person centres
	// and boxes, decoded the same way) or "pose" (MediaPipe's BlazePose
	// detector, which finds people through their faces). Default:
	// DefaultDetector.
	Detector string `yaml:"detector"`
	// Model is the centernet or movenet detector's entry in the model
	// manifest (default CenterNetModelName or MoveNetModelName; the
	// CenterNet entries differ in input size).
	Model string `yaml:"model"`
	// MinScore is the lowest detector score kept (default 0.5, MediaPipe's,
	// for pose; 0.2, Human's CenterNet default, for centernet and movenet,
	// whose centre heatmaps are scored alike).
	MinScore float64 `yaml:"min_score"`
	// MaxPersons caps the people returned, most confident first (default 100).
	MaxPersons int `yaml:"max_persons"`
	// Tiling adds passes over overlapping tiles so that people too small for
	// the whole-image pass are found: "auto" or "off" (default: "auto" for
	// pose, defaultCenterNetTiling for centernet).
	Tiling string `yaml:"tiling"`
	// Landmarks (pose only) runs the pose landmark network on each detection, which
	// confirms it is a person and gives the body box from the visible
	// landmarks: "on" (default) or "off" (the box then comes from the
	// detector's body circle alone).
	Landmarks string `yaml:"landmarks"`
	// MinPresence is the lowest landmark network person probability kept
	// when Landmarks is on (default 0.5).
	MinPresence float64 `yaml:"min_presence"`
}

const (
	defaultMinScore   = 0.5
	defaultMaxPersons = 100
	inputSize         = 224
	nmsThreshold      = 0.3 // MediaPipe's min_suppression_threshold for pose detection
)

// DefaultDetector is the detector used when the config names none: the one
// that measures better on the evaluation set (`go run ./estimators/cmd/eval
// -tasks bodies` reports both). CenterNet finds people seen from behind,
// small and partly visible people that the face-led pose detector misses.
const DefaultDetector = "centernet"

func (c Config) withDefaults() (Config, error) {
	switch c.Detector {
	case "":
		c.Detector = DefaultDetector
	case "centernet", "movenet", "pose":
	default:
		return c, fmt.Errorf("body config: detector %q is not centernet, movenet or pose", c.Detector)
	}
	if c.Model == "" && c.Detector == "centernet" {
		c.Model = CenterNetModelName
	}
	if c.Model == "" && c.Detector == "movenet" {
		c.Model = MoveNetModelName
	}
	if c.MinScore == 0 {
		c.MinScore = defaultMinScore
		if c.Detector != "pose" {
			c.MinScore = centerNetMinScore
		}
	}
	if !(c.MinScore > 0 && c.MinScore < 1) {
		return c, fmt.Errorf("body config: min_score %v is outside (0, 1)", c.MinScore)
	}
	if c.MaxPersons == 0 {
		c.MaxPersons = defaultMaxPersons
	}
	if c.MaxPersons < 0 {
		return c, fmt.Errorf("body config: max_persons %d is negative", c.MaxPersons)
	}
	switch c.Tiling {
	case "":
		c.Tiling = "auto"
		if c.Detector != "pose" {
			c.Tiling = defaultCenterNetTiling
		}
	case "auto", "off":
	default:
		return c, fmt.Errorf("body config: tiling %q is not auto or off", c.Tiling)
	}
	switch c.Landmarks {
	case "":
		c.Landmarks = "on"
	case "on", "off":
	default:
		return c, fmt.Errorf("body config: landmarks %q is not on or off", c.Landmarks)
	}
	if c.MinPresence == 0 {
		c.MinPresence = 0.5
	}
	if !(c.MinPresence > 0 && c.MinPresence < 1) {
		return c, fmt.Errorf("body config: min_presence %v is outside (0, 1)", c.MinPresence)
	}
	return c, nil
}

// Defaults returns the config with every zero value replaced by its
// default, or an error for an invalid config.
func (c Config) Defaults() (Config, error) { return c.withDefaults() }

// String names the detector, its network and its tiling, e.g.
// "centernet/centernet/tiling=off".
func (c Config) String() string {
	if c.Detector == "pose" {
		return fmt.Sprintf("pose/landmarks=%s/tiling=%s", c.Landmarks, c.Tiling)
	}
	return fmt.Sprintf("%s/%s/tiling=%s", c.Detector, c.Model, c.Tiling)
}

// Candidates are the detector configurations the evaluation and the
// benchmark compare, defaults filled in: every CenterNet build of the
// manifest (they differ in input size) and MoveNet MultiPose, each with
// tiling off and auto, then the pose detector.
func Candidates(rt *models.Runtime) []Config {
	var out []Config
	add := func(c Config) {
		if c, err := c.withDefaults(); err == nil {
			out = append(out, c)
		}
	}
	for _, mi := range rt.Manifest() {
		detector := ""
		switch {
		case strings.HasPrefix(mi.Name, CenterNetModelName):
			detector = "centernet"
		case mi.Name == MoveNetModelName:
			detector = "movenet"
		default:
			continue
		}
		for _, tiling := range []string{"off", "auto"} {
			add(Config{Detector: detector, Model: mi.Name, Tiling: tiling})
		}
	}
	add(Config{Detector: "pose"})
	return out
}

// Detector finds people with the configured network.
type Detector struct {
	cfg       Config
	centerNet *centerNet // set for the centernet detector; the rest is the pose one's
	model     *models.Model
	landmark  *models.Model // nil when landmarks are off
	anchors   []anchor
}

// New loads the detector from the runtime.
func New(rt *models.Runtime, cfg Config) (*Detector, error) {
	if rt == nil {
		return nil, errors.New("body detector: no model runtime")
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if cfg.Detector != "pose" {
		cn, err := newCenterNet(rt, cfg)
		if err != nil {
			return nil, fmt.Errorf("body detector: %w", err)
		}
		return &Detector{cfg: cfg, centerNet: cn}, nil
	}
	m, err := rt.Model(ModelName)
	if err != nil {
		return nil, fmt.Errorf("body detector: %w", err)
	}
	anchors := poseAnchors()
	if err := checkShapes(m.Info, []int{1, inputSize, inputSize, 3}, []int{1, len(anchors), 12}, []int{1, len(anchors), 1}); err != nil {
		return nil, fmt.Errorf("body detector: %w", err)
	}
	d := &Detector{cfg: cfg, model: m, anchors: anchors}
	if cfg.Landmarks == "on" {
		lm, err := rt.Model(LandmarkModelName)
		if err != nil {
			return nil, fmt.Errorf("body detector: %w", err)
		}
		if len(lm.Info.Inputs) != 1 || fmt.Sprint(lm.Info.Inputs[0].Shape) != fmt.Sprint([]int{1, landmarkInput, landmarkInput, 3}) ||
			len(lm.Info.Outputs) < 2 || fmt.Sprint(lm.Info.Outputs[0].Shape) != fmt.Sprint([]int{1, landmarkPoints * 5}) {
			return nil, fmt.Errorf("body detector: model %s has unexpected tensors", LandmarkModelName)
		}
		d.landmark = lm
	}
	return d, nil
}

func checkShapes(info *models.ModelInfo, in, regs, scores []int) error {
	want := [][]int{in, regs, scores}
	got := make([][]int, 0, 3)
	for _, t := range info.Inputs {
		got = append(got, t.Shape)
	}
	for _, t := range info.Outputs {
		got = append(got, t.Shape)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		return fmt.Errorf("model %s has tensors %v, want %v", info.Name, got, want)
	}
	return nil
}

// Detect finds people in a BGR image, most confident first.
func (d *Detector) Detect(ctx context.Context, img gocv.Mat) ([]Person, error) {
	if img.Empty() {
		return nil, errors.New("body detection: empty image")
	}
	if img.Type() != gocv.MatTypeCV8UC3 {
		return nil, fmt.Errorf("body detection: image type %v is not 8-bit BGR", img.Type())
	}
	if d.centerNet != nil {
		ps, err := d.centerNet.detect(ctx, img)
		if err != nil {
			return nil, fmt.Errorf("body detection: %w", err)
		}
		return ps, nil
	}
	w, h := img.Cols(), img.Rows()
	var all []raw
	for _, t := range d.tiles(w, h) {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("body detection: %w", err)
		}
		dets, err := d.detectRegion(ctx, img, t)
		if err != nil {
			return nil, fmt.Errorf("body detection: %w", err)
		}
		all = append(all, dropCut(dets, t, w, h)...)
	}
	merged := weightedNMS(all, nmsThreshold)
	out := make([]Person, 0, len(merged))
	for _, r := range merged {
		p, ok := r.person(w, h)
		if !ok {
			continue
		}
		if d.landmark != nil {
			lms, presence, err := d.landmarks(ctx, img, roiFromKeypoints(r.kp[0], r.kp[1]))
			if err != nil {
				return nil, fmt.Errorf("body detection: %w", err)
			}
			p.Landmarks, p.Presence = lms, presence
			if presence < d.cfg.MinPresence {
				continue
			}
			p.X1, p.Y1, p.X2, p.Y2 = landmarkBox(lms, w, h, [4]float64{p.X1, p.Y1, p.X2, p.Y2})
		}
		out = append(out, p)
	}
	out = suppressSamePerson(out)
	if len(out) > d.cfg.MaxPersons {
		out = out[:d.cfg.MaxPersons]
	}
	return out, nil
}

// tiles lists the regions the detector runs on: the whole image, and for
// images whose longer side is well above the input size, squares of half
// the longer side overlapping by a quarter, so that people about half as
// tall as the image are seen at twice the scale.
func (d *Detector) tiles(w, h int) []image.Rectangle {
	out := []image.Rectangle{image.Rect(0, 0, w, h)}
	long := max(w, h)
	if d.cfg.Tiling == "off" || long < 2*inputSize {
		return out
	}
	side := min(min(w, h), int(math.Ceil(float64(long)*0.6)))
	return append(out, letterbox.Tiles(w, h, side)...)
}

// dropCut removes detections from a tile whose face box reaches a tile edge
// that is not an image edge: the whole image or a neighbouring tile sees
// that face whole.
func dropCut(dets []raw, t image.Rectangle, w, h int) []raw {
	if t.Min.X <= 0 && t.Min.Y <= 0 && t.Max.X >= w && t.Max.Y >= h {
		return dets
	}
	out := dets[:0]
	for _, d := range dets {
		if !letterbox.CutByTile(d.box, t, w, h) {
			out = append(out, d)
		}
	}
	return out
}

// samePersonIoU is the body-box overlap above which two detections are taken
// for one person: the detector can fire twice on one body from the face
// and from the upper body, with face boxes too far apart for its own NMS.
const samePersonIoU = 0.6

// suppressSamePerson keeps the more confident of two people whose body
// boxes overlap by more than samePersonIoU; people are sorted by score.
func suppressSamePerson(ps []Person) []Person {
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].Score > ps[j].Score })
	out := ps[:0]
	for _, p := range ps {
		dup := false
		for _, q := range out {
			if iou([4]float64{p.X1, p.Y1, p.X2, p.Y2}, [4]float64{q.X1, q.Y1, q.X2, q.Y2}) > samePersonIoU {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, p)
		}
	}
	return out
}
