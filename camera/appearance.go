package camera

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"image"
	"time"

	"gocv.io/x/gocv"

	"imageapid/estimators/facetemplate"
)

// Face tracks use their best shot's template (the "template" attribute a
// template extractor adds) as an appearance cue; see Tracker. The gate is the
// template network's distance at Tracker.AppearanceMaxFAR in its
// verification table, found from the model id in the first template seen.

// templateVector decodes a "template" attribute: the base64 of a template
// blob. It returns nil for anything else.
func templateVector(attrs map[string]any) (vec []float32, modelID uint16) {
	s, ok := attrs["template"].(string)
	if !ok {
		return nil, 0
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) < 8 {
		return nil, 0
	}
	modelID = binary.LittleEndian.Uint16(b[6:8])
	t, err := facetemplate.Decode(b, modelID)
	if err != nil {
		return nil, 0
	}
	return t.Vector, modelID
}

// appearanceGate is the template distance at false-accept rate far in the
// verification table of the network that made templates with modelID.
func appearanceGate(modelID uint16, far float64) (float64, error) {
	for name, n := range facetemplate.Networks {
		if modelID != n.ID && modelID != n.FlipID {
			continue
		}
		cal, err := facetemplate.LoadCalibration(name, modelID == n.FlipID)
		if err != nil {
			return 0, err
		}
		gate := 0.0
		for _, p := range cal.Points {
			if p[1] <= far {
				gate = p[0]
			}
		}
		return gate, nil
	}
	return 0, fmt.Errorf("no embedding network has template model id %d", modelID)
}

// useTemplate gives t the template in attrs, if any, and sets the tracker's
// appearance gate from the first template seen.
func (a *analyser) useTemplate(t *Track, attrs map[string]any) []float32 {
	vec, id := templateVector(attrs)
	if vec == nil {
		return nil
	}
	if a.tracker.AppearanceGate() == 0 && !a.noGate {
		gate, err := appearanceGate(id, a.tracker.cfg.AppearanceMaxFAR)
		if err != nil || gate <= 0 {
			a.noGate = true
			a.c.log.Warn("face tracks without the appearance cue", "err", err, "gate", gate)
			return nil
		}
		a.tracker.SetAppearanceGate(gate)
	}
	if t != nil {
		a.tracker.SetTemplate(t, vec)
	}
	return vec
}

// appearance returns, for the frame's detections, a function that computes
// a detection's template by running the attributor on a crop around it, as
// for a best shot; nil when there is no attributor or no gate yet.
func (a *analyser) appearance(ctx context.Context, img gocv.Mat, dets []Detection) AppearanceFunc {
	c := a.c
	if c.an.Attributor == nil || a.tracker.AppearanceGate() == 0 {
		return nil
	}
	return func(i int) []float32 {
		if dets[i].Class != ClassFace {
			return nil
		}
		crop, d, ok := cropAround(img, dets[i], c.cfg.Attributes.Margin)
		if !ok {
			return nil
		}
		defer crop.Close()
		actx, cancel := context.WithTimeout(ctx, c.cfg.Attributes.Timeout)
		defer cancel()
		start := time.Now()
		attrs, err := c.an.Attributor.Attributes(actx, crop, d)
		c.attrRuns.Add(1)
		c.attrTotal.Add(uint64(time.Since(start)))
		if err != nil {
			c.attrErrs.Add(1)
			return nil
		}
		return a.useTemplate(nil, attrs)
	}
}

// cropAround copies the frame around d (see around) and returns the crop
// with d's box normalized to it.
func cropAround(img gocv.Mat, d Detection, margin float64) (gocv.Mat, Detection, bool) {
	outer, inner, ok := around(img, d.Box, margin)
	if !ok {
		return gocv.Mat{}, d, false
	}
	region := img.Region(outer)
	defer region.Close()
	d.Box = inner
	return region.Clone(), d, true
}

// around is the pixel rectangle of img around b, widened by margin of b's
// size on each side, and b normalized to that rectangle; ok is false when
// nothing of it is in the frame.
func around(img gocv.Mat, b Box, margin float64) (outer image.Rectangle, inner Box, ok bool) {
	w, h := img.Cols(), img.Rows()
	bw, bh := b.Width(), b.Height()
	outer = Box{b[0] - margin*bw, b[1] - margin*bh, b[2] + margin*bw, b[3] + margin*bh}.Pixels(w, h)
	if outer.Dx() < 1 || outer.Dy() < 1 {
		return outer, inner, false
	}
	return outer, BoxFromPixels(b.Pixels(w, h).Sub(outer.Min), outer.Dx(), outer.Dy()), true
}
