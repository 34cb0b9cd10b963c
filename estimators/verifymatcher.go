package estimators

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"

	"imageapid/estimators/facetemplate"
)

// verifyMatcher serves verify-matcher: the first two face objects with a
// "$template" are compared, and "verification" gets the distance (squared
// L2 between unit vectors, 0..4), the false acceptance and rejection rates
// a threshold at that distance gives on the calibration corpus, and the
// score (a logistic on distance fitted on the same corpus; see
// facetemplate.Calibration).
type verifyMatcher struct {
	modelID uint16
	cal     *facetemplate.Calibration
}

func newVerifyMatcher(d Deps) (Estimator, error) {
	s, err := templateSettings(d)
	if err != nil {
		return nil, err
	}
	n, ok := facetemplate.Networks[s.Network]
	if !ok {
		return nil, fmt.Errorf("unknown embedding network %q", s.Network)
	}
	cal, err := facetemplate.LoadCalibration(s.Network, s.Flip)
	if err != nil {
		return nil, err
	}
	id := n.ID
	if s.Flip {
		id = n.FlipID
	}
	if cal.ModelID != id {
		return nil, fmt.Errorf("calibration table is for model id %d, the extractor makes %d", cal.ModelID, id)
	}
	return &verifyMatcher{modelID: id, cal: cal}, nil
}

func (*verifyMatcher) Name() string     { return "verify-matcher" }
func (*verifyMatcher) TakesImage() bool { return false }
func (*verifyMatcher) NeedsImage() bool { return false }

func (m *verifyMatcher) Process(_ context.Context, s *Sample) error {
	var vecs [][]float32
	for i, o := range s.Objects {
		if len(vecs) == 2 {
			break
		}
		if o.String("class") != "face" || !o.Has("$template") {
			continue
		}
		vec, err := m.template(o)
		if err != nil {
			return BadInput("object %d: %v", i, err)
		}
		vecs = append(vecs, vec)
	}
	if len(vecs) < 2 {
		return BadInput("verify-matcher needs two objects with \"class\": \"face\" and a \"$template\", got %d", len(vecs))
	}
	d, err := facetemplate.Distance(vecs[0], vecs[1])
	if err != nil {
		return BadInput("%v", err)
	}
	far, frr := m.cal.Rates(d)
	return s.Extra.Set("verification", map[string]float64{
		"distance": round(d, 6),
		"fa_r":     round(far, 6),
		"fr_r":     round(frr, 6),
		"score":    round(m.cal.Score(d), 6),
	})
}

// template decodes an object's "$template".
func (m *verifyMatcher) template(o *Object) ([]float32, error) {
	var b64 string
	if ok, err := o.Get("$template", &b64); !ok || err != nil {
		return nil, errors.New("\"$template\" is not a string")
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("\"$template\": %s", MsgBadBase64)
	}
	t, err := facetemplate.Decode(raw, m.modelID)
	if err != nil {
		return nil, fmt.Errorf("\"$template\": %w", err)
	}
	return t.Vector, nil
}
