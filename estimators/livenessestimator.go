package estimators

import (
	"context"
	"fmt"

	"imageapid/estimators/attributes"
	"imageapid/estimators/face"
)

const livenessEstimatorService = "face-detector-liveness-estimator"

// LivenessEstimatorSettings configure face-detector-liveness-estimator.
type LivenessEstimatorSettings struct {
	// Threshold on the probability of a real face for REAL.
	Threshold float64 `yaml:"threshold"`
	// MinFaceSize is the smallest face box side, in pixels, judged at all;
	// smaller faces get NOT_ENOUGH_DATA.
	MinFaceSize float64 `yaml:"min_face_size"`
	// MaxCut is the largest share of the face box that may lie outside the
	// image before the face gets NOT_ENOUGH_DATA. A face whose eyes, nose
	// tip or mouth lie outside the image gets it too. A tight face crop
	// (the face filling the image, its box touching or passing the border)
	// is judged.
	MaxCut float64 `yaml:"max_cut"`
}

// livenessEstimator serves face-detector-liveness-estimator: every detected
// face with bbox, confidence and "liveness": {value REAL|FAKE|NOT_ENOUGH_DATA,
// confidence = probability of a real face}. The probability comes from a
// logistic head on the colour texture of the aligned face (uniform LBP of
// Y, Cr, Cb and saturation/value histograms), fitted on the nine liveness
// sources of ../shared/corpus and chosen by its ACER on each source left out
// in turn (see models/heads/liveness_texture.json).
type livenessEstimator struct {
	faces *face.Pipeline
	head  *attributes.LivenessHead
	set   LivenessEstimatorSettings
}

func newLivenessEstimator(d Deps) (Estimator, error) {
	set := LivenessEstimatorSettings{Threshold: 0.5, MinFaceSize: 48, MaxCut: 0.4}
	if d.Settings != nil {
		if err := d.Settings(livenessEstimatorService, &set); err != nil {
			return nil, fmt.Errorf("settings: %w", err)
		}
	}
	h, err := attributes.NewLivenessHead(d.Models, attributes.LivenessTextureHead)
	if err != nil {
		return nil, err
	}
	return &livenessEstimator{faces: d.Faces, head: h, set: set}, nil
}

func (*livenessEstimator) Name() string     { return livenessEstimatorService }
func (*livenessEstimator) TakesImage() bool { return true }
func (*livenessEstimator) NeedsImage() bool { return true }

func (e *livenessEstimator) Process(ctx context.Context, s *Sample) error {
	faces, err := fittedFaces(ctx, e.faces, s)
	if err != nil {
		return err
	}
	objs := make([]*Object, len(faces))
	for i := range faces {
		o := detectionObject(i, faces[i].Detection, s.Width(), s.Height())
		t := faceTarget{obj: o, loc: attributes.Located{Face: faces[i], Source: attributes.Detected}}
		p, err := livenessProbability(ctx, s, e.head, &t)
		if err != nil {
			return fmt.Errorf("liveness: %w", err)
		}
		l := livenessVerdict(p, e.set.Threshold)
		if !e.enoughData(faces[i].Detection, s.Width(), s.Height()) {
			l["value"] = "NOT_ENOUGH_DATA"
		}
		o.Set("liveness", l)
		objs[i] = o
	}
	mergeByIndex(s, objs)
	return nil
}

// enoughData reports whether a face is large enough and inside the frame
// enough to judge: its box at least MinFaceSize on each side, at most
// MaxCut of the box outside the image, and its eyes, nose tip and mouth
// inside the image. Touching the border is no reason by itself: tight face
// crops touch it on every side.
func (e *livenessEstimator) enoughData(d face.Detection, w, h int) bool {
	bw, bh := d.X2-d.X1, d.Y2-d.Y1
	if bw < e.set.MinFaceSize || bh < e.set.MinFaceSize {
		return false
	}
	for _, k := range d.Keypoints[:4] { // eyes, nose tip, mouth centre
		if k.X < 0 || k.Y < 0 || k.X > float64(w) || k.Y > float64(h) {
			return false
		}
	}
	inW := min(d.X2, float64(w)) - max(d.X1, 0)
	inH := min(d.Y2, float64(h)) - max(d.Y1, 0)
	if inW <= 0 || inH <= 0 {
		return false
	}
	return 1-(inW*inH)/(bw*bh) <= e.set.MaxCut
}
