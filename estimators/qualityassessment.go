package estimators

import (
	"context"
	"fmt"
	"image"
	"math"

	"imageapid/estimators/attributes"
	"imageapid/estimators/face"
	"imageapid/estimators/quality"
)

const qualityService = "quality-assessment-estimator"

// qualityAssessor serves quality-assessment-estimator: every face object
// (from the face fitter: bbox, fitter, angles) gains "quality": {"qaa":
// {...}} with the 29 fields of the Image API (see package quality). A
// request without objects is refused with "No object were passed".
type qualityAssessor struct {
	faces   *face.Pipeline
	feats   *attributes.Extractor
	mask    *attributes.Runner
	emotion *attributes.Runner
	th      quality.Thresholds
}

func newQualityAssessor(d Deps) (Estimator, error) {
	th := quality.DefaultThresholds()
	if d.Settings != nil {
		if err := d.Settings(qualityService, &th); err != nil {
			return nil, fmt.Errorf("settings: %w", err)
		}
	}
	return buildQualityAssessor(d, th)
}

func buildQualityAssessor(d Deps, th quality.Thresholds) (*qualityAssessor, error) {
	m, err := attributes.NewRunner(d.Models, "mask")
	if err != nil {
		return nil, err
	}
	em, err := attributes.NewRunner(d.Models, "emotion")
	if err != nil {
		return nil, err
	}
	x, err := attributes.ForHeads(d.Models, m, em)
	if err != nil {
		return nil, err
	}
	return &qualityAssessor{faces: d.Faces, feats: x, mask: m, emotion: em, th: th}, nil
}

func (*qualityAssessor) Name() string     { return qualityService }
func (*qualityAssessor) TakesImage() bool { return false }
func (*qualityAssessor) NeedsImage() bool { return true }

func (e *qualityAssessor) Process(ctx context.Context, s *Sample) error {
	if len(s.Objects) == 0 {
		return BadInput(MsgNoObjects)
	}
	targets, err := attributeTargets(ctx, e.faces, s)
	if err != nil {
		return err
	}
	for i := range targets {
		r, err := e.assess(ctx, s, &targets[i], objectAngles(targets[i].obj))
		if err != nil {
			return err
		}
		targets[i].obj.Set("quality", map[string]any{"qaa": r})
	}
	return nil
}

// assess measures one face; angles, when nil, come from the fitted face.
func (e *qualityAssessor) assess(ctx context.Context, s *Sample, t *faceTarget, angles *[3]float64) (quality.Report, error) {
	f, err := faceFeatures(ctx, s, e.feats, t)
	if err != nil {
		return quality.Report{}, err
	}
	m, err := e.mask.RunFeatures(ctx, f)
	if err != nil {
		return quality.Report{}, fmt.Errorf("quality: %w", err)
	}
	em, err := e.emotion.RunFeatures(ctx, f)
	if err != nil {
		return quality.Report{}, fmt.Errorf("quality: %w", err)
	}
	neutral := 0.0
	for k, name := range attributes.Emotions {
		if name == "NEUTRAL" && k < len(em) {
			neutral = float64(em[k])
		}
	}
	img, err := s.Pixels()
	if err != nil {
		return quality.Report{}, err
	}
	in := quality.Input{
		Image: img, Face: &t.loc.Face,
		Box: image.Rect(int(math.Floor(t.loc.Face.X1)), int(math.Floor(t.loc.Face.Y1)),
			int(math.Ceil(t.loc.Face.X2)), int(math.Ceil(t.loc.Face.Y2))),
		Yaw: t.loc.Face.Yaw, Pitch: t.loc.Face.Pitch, Roll: t.loc.Face.Roll,
		MaskProbability: float64(m[0]), NeutralProbability: neutral,
	}
	if _, err := objectBox(t.obj, s.Width(), s.Height()); err == nil {
		// The object's own bbox, unclamped, so a face cut by the frame shows.
		var bb []float64
		t.obj.Get("bbox", &bb)
		w, h := float64(s.Width()), float64(s.Height())
		in.Box = image.Rect(int(math.Floor(bb[0]*w)), int(math.Floor(bb[1]*h)), int(math.Ceil(bb[2]*w)), int(math.Ceil(bb[3]*h)))
	}
	if angles != nil {
		in.Yaw, in.Pitch, in.Roll = angles[0], angles[1], angles[2]
	} else if !t.loc.HasMesh() {
		in.Yaw, in.Pitch, in.Roll = 0, 0, 0
	}
	r, _, err := quality.Assess(in, e.th)
	if err != nil {
		return quality.Report{}, err
	}
	return r, nil
}

// objectAngles reads "angles" {yaw, pitch, roll} when the object has them.
func objectAngles(o *Object) *[3]float64 {
	var a struct {
		Yaw, Pitch, Roll *float64
	}
	if ok, err := o.Get("angles", &a); !ok || err != nil || a.Yaw == nil || a.Pitch == nil || a.Roll == nil {
		return nil
	}
	v := [3]float64{*a.Yaw, *a.Pitch, *a.Roll}
	for _, x := range v {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil
		}
	}
	return &v
}
