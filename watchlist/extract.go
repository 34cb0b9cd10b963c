package watchlist

import (
	"context"
	"encoding/json"
	"fmt"
	"image"
	"math"

	"gocv.io/x/gocv"

	"imageapid/estimators/face"
	"imageapid/estimators/facetemplate"
	"imageapid/estimators/quality"
)

// Extractor finds the faces of an image and makes their templates.
type Extractor interface {
	Faces(ctx context.Context, img gocv.Mat) ([]FoundFace, error)
}

// Largest is the index of the face with the largest box (the first of
// equals), or -1 when there is none.
func Largest(faces []FoundFace) int {
	best, area := -1, 0.0
	for i, f := range faces {
		if a := (f.BBox[2] - f.BBox[0]) * (f.BBox[3] - f.BBox[1]); a > area {
			best, area = i, a
		}
	}
	return best
}

// FoundFace is one face of an image with its template and quality figures.
type FoundFace struct {
	// BBox is x1, y1, x2, y2 as fractions of the image size (the Image API's bbox).
	BBox     [4]float64
	Template []byte
	Vector   []float32
	Quality  Quality
}

// Quality are the figures an enrolment photo is judged on, stored with the template.
type Quality struct {
	Detection    float64 `json:"detection"`     // detector score
	EyesDistance float64 `json:"eyes_distance"` // pixels
	Yaw          float64 `json:"yaw"`           // degrees
	Pitch        float64 `json:"pitch"`
	Sharpness    int     `json:"sharpness"` // quality-assessment's sharpnessScore, 0..100
}

// JSON is the figures as stored.
func (q Quality) JSON() json.RawMessage {
	b, _ := json.Marshal(q)
	return b
}

// PipelineExtractor is the Extractor on the daemon's face pipeline and the
// template extractor's embedder, so that enrolled templates are the ones
// face-detector-template-extractor returns.
type PipelineExtractor struct {
	pipeline *face.Pipeline
	embedder *facetemplate.Embedder
}

// NewPipelineExtractor builds the extractor.
func NewPipelineExtractor(p *face.Pipeline, e *facetemplate.Embedder) *PipelineExtractor {
	return &PipelineExtractor{pipeline: p, embedder: e}
}

// Faces detects, fits and embeds every face of img.
func (x *PipelineExtractor) Faces(ctx context.Context, img gocv.Mat) ([]FoundFace, error) {
	dets, err := x.pipeline.Detect(ctx, img)
	if err != nil {
		return nil, fmt.Errorf("detect faces: %w", err)
	}
	w, h := float64(img.Cols()), float64(img.Rows())
	out := make([]FoundFace, 0, len(dets))
	for _, d := range dets {
		f, err := x.pipeline.Fit(ctx, img, d)
		if err != nil {
			return nil, fmt.Errorf("fit face: %w", err)
		}
		blob, err := x.embedder.Template(ctx, img, &f)
		if err != nil {
			return nil, err
		}
		t, err := facetemplate.Decode(blob, x.embedder.ModelID())
		if err != nil {
			return nil, err
		}
		le, re := f.LeftEye(), f.RightEye()
		q := Quality{Detection: round6(d.Score), EyesDistance: math.Round(math.Hypot(le.X-re.X, le.Y-re.Y)*10) / 10,
			Yaw: math.Round(f.Yaw*10) / 10, Pitch: math.Round(f.Pitch*10) / 10}
		box := image.Rect(int(d.X1), int(d.Y1), int(math.Ceil(d.X2)), int(math.Ceil(d.Y2)))
		// Only the sharpness of the report is kept: the attribute heads
		// (mask, expression) are not run for enrolment.
		if r, _, err := quality.Assess(quality.Input{Image: img, Face: &f, Box: box, Yaw: f.Yaw, Pitch: f.Pitch, Roll: f.Roll},
			quality.DefaultThresholds()); err == nil {
			q.Sharpness = r.SharpnessScore
		}
		out = append(out, FoundFace{
			BBox:     [4]float64{round6(clamp01(d.X1 / w)), round6(clamp01(d.Y1 / h)), round6(clamp01(d.X2 / w)), round6(clamp01(d.Y2 / h))},
			Template: blob, Vector: t.Vector, Quality: q,
		})
	}
	return out, nil
}

func clamp01(v float64) float64 { return math.Max(0, math.Min(1, v)) }

// enrolmentProblem says why a face is not good enough to enrol, or "".
func (c Config) enrolmentProblem(q Quality) string {
	if q.EyesDistance < c.MinEyesDistance {
		return fmt.Sprintf("the face is too small to enrol: eyes %.0f px apart, at least %.0f needed", q.EyesDistance, c.MinEyesDistance)
	}
	if math.Abs(q.Yaw) > c.MaxYaw {
		return fmt.Sprintf("the face is turned too far to enrol: yaw %.0f degrees, at most %.0f", q.Yaw, c.MaxYaw)
	}
	return ""
}

// EnrolImage finds the one face of img and stores its template for a person.
func (s *Service) EnrolImage(ctx context.Context, list, personID string, img gocv.Mat) (FaceInfo, Quality, error) {
	if s.extractor == nil {
		return FaceInfo{}, Quality{}, fmt.Errorf("%w: this daemon enrols templates only ($template)", ErrBadInput)
	}
	if _, err := s.Person(ctx, list, personID); err != nil {
		return FaceInfo{}, Quality{}, err
	}
	faces, err := s.extractor.Faces(ctx, img)
	if err != nil {
		return FaceInfo{}, Quality{}, err
	}
	switch {
	case len(faces) == 0:
		return FaceInfo{}, Quality{}, fmt.Errorf("%w: no face found in the image", ErrBadInput)
	case len(faces) > 1:
		return FaceInfo{}, Quality{}, fmt.Errorf("%w: %d faces found in the image; an enrolment photo must show one", ErrBadInput, len(faces))
	}
	f := faces[0]
	if p := s.cfg.enrolmentProblem(f.Quality); p != "" {
		return FaceInfo{}, f.Quality, fmt.Errorf("%w: %s", ErrBadInput, p)
	}
	info, err := s.AddTemplate(ctx, list, personID, f.Template, f.Quality.JSON())
	return info, f.Quality, err
}

// FaceResult is one face of a searched image and its candidates.
type FaceResult struct {
	BBox       [4]float64  `json:"bbox"`
	Candidates []Candidate `json:"candidates"`
}

// SearchImage searches a list for every face of img.
func (s *Service) SearchImage(ctx context.Context, list string, img gocv.Mat, limit int) ([]FaceResult, error) {
	if s.extractor == nil {
		return nil, fmt.Errorf("%w: this daemon searches templates only ($template)", ErrBadInput)
	}
	if _, err := s.list(ctx, list, false); err != nil {
		return nil, err
	}
	faces, err := s.extractor.Faces(ctx, img)
	if err != nil {
		return nil, err
	}
	out := make([]FaceResult, 0, len(faces))
	for _, f := range faces {
		c, err := s.Search(ctx, list, f.Vector, limit)
		if err != nil {
			return nil, err
		}
		out = append(out, FaceResult{BBox: f.BBox, Candidates: c})
	}
	return out, nil
}

// Identity is who a camera's face track is: the best candidate under the
// list's threshold.
type Identity struct {
	PersonID string  `json:"person_id"`
	Name     string  `json:"name"`
	Score    float64 `json:"score"`
	FAR      float64 `json:"fa_r"`
	Distance float64 `json:"distance"`
}

// Identify searches a list for the largest face of img (a track's best
// shot); nil when there is no face, no list of that name, or no candidate
// under the threshold.
func (s *Service) Identify(ctx context.Context, list string, img gocv.Mat) (*Identity, error) {
	if s.extractor == nil {
		return nil, nil
	}
	if _, err := s.list(ctx, list, false); err != nil {
		return nil, nil
	}
	faces, err := s.extractor.Faces(ctx, img)
	if err != nil {
		return nil, err
	}
	best := Largest(faces)
	if best < 0 {
		return nil, nil
	}
	c, err := s.Search(ctx, list, faces[best].Vector, 1)
	if err != nil || len(c) == 0 {
		return nil, err
	}
	return &Identity{PersonID: c[0].PersonID, Name: c[0].Name, Score: c[0].Score, FAR: c[0].FAR, Distance: c[0].Distance}, nil
}
