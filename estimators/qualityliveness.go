package estimators

import (
	"context"
	"fmt"

	"imageapid/estimators/attributes"
	"imageapid/estimators/face"
	"imageapid/estimators/quality"
)

const qualityLivenessService = "quality-liveness-anti-spoofing"

// QualityLivenessSettings configure quality-liveness-anti-spoofing.
type QualityLivenessSettings struct {
	// RejectManyFaces refuses images with more than one face.
	RejectManyFaces bool `yaml:"reject_many_faces"`
	// QualityThreshold is the lowest QAA totalScore accepted.
	QualityThreshold int `yaml:"quality_threshold"`
}

// qualityLiveness serves quality-liveness-anti-spoofing: the face fitter,
// then 400 "More than one face detected" for several faces, then QAA (400
// "Low image quality..." below the threshold), then the anti-spoofing
// algorithm of liveness-anti-spoofing. The face object gets {id, class,
// liveness}; zero faces leave the objects as they came (200).
type qualityLiveness struct {
	faces   *face.Pipeline
	quality *qualityAssessor
	spoof   *antiSpoofing
	set     QualityLivenessSettings
}

func newQualityLiveness(d Deps) (Estimator, error) {
	set := QualityLivenessSettings{RejectManyFaces: true, QualityThreshold: 30}
	if d.Settings != nil {
		if err := d.Settings(qualityLivenessService, &set); err != nil {
			return nil, fmt.Errorf("settings: %w", err)
		}
	}
	th := quality.DefaultThresholds()
	if d.Settings != nil {
		if err := d.Settings(qualityService, &th); err != nil {
			return nil, fmt.Errorf("settings: %w", err)
		}
	}
	q, err := buildQualityAssessor(d, th)
	if err != nil {
		return nil, err
	}
	sp, err := buildAntiSpoofing(d)
	if err != nil {
		return nil, err
	}
	return &qualityLiveness{faces: d.Faces, quality: q, spoof: sp, set: set}, nil
}

func (*qualityLiveness) Name() string     { return qualityLivenessService }
func (*qualityLiveness) TakesImage() bool { return true }
func (*qualityLiveness) NeedsImage() bool { return true }

func (e *qualityLiveness) Process(ctx context.Context, s *Sample) error {
	faces, err := fittedFaces(ctx, e.faces, s)
	if err != nil {
		return err
	}
	if len(faces) == 0 {
		return nil
	}
	if len(faces) > 1 && e.set.RejectManyFaces {
		return BadInput(MsgManyFaces)
	}
	// The face object: the first face object passed in, else a new one
	// whose id follows the objects of other classes.
	var obj *Object
	for _, o := range s.Objects {
		if o.String("class") == "face" {
			obj = o
			break
		}
	}
	if obj == nil {
		obj = NewObject()
		obj.Set("id", len(s.Objects))
		obj.Set("class", "face")
		s.Objects = append(s.Objects, obj)
	}
	t := faceTarget{obj: NewObject(), loc: attributes.Located{Face: faces[0], Source: attributes.Detected}}
	r, err := e.quality.assess(ctx, s, &t, nil)
	if err != nil {
		return err
	}
	if r.TotalScore < e.set.QualityThreshold {
		return BadInput("Low image quality. Calculated score value (%d) is less than the threshold (%d)", r.TotalScore, e.set.QualityThreshold)
	}
	l, err := e.spoof.verdict(ctx, s, &t)
	if err != nil {
		return err
	}
	return obj.Set("liveness", l)
}
