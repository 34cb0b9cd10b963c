package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"gocv.io/x/gocv"

	"imageapid/camera"
	"imageapid/estimators"
	"imageapid/estimators/face"
	"imageapid/watchlist"
)

// Names a camera's `estimators` list may hold besides attribute services.
const (
	detectFaces = "face-detector" // BlazeFace detection only, every frame
	hogPeople   = "hog-people"    // OpenCV's HOG people detector
)

// analysisBuilder turns a camera's estimator names into what the camera runs
// on its frames: detectors for faces and bodies, and an attributor that runs
// the named Image API services on each track's best shot.
type analysisBuilder struct {
	// faces is a pipeline tuned for frames: one pass per frame, no tiling.
	faces    *face.Pipeline
	services map[string]estimators.Estimator
	// lists identifies faces for cameras with identify.list (nil: watchlists off).
	lists *watchlist.Service
}

// newAnalysisBuilder takes the camera face pipeline (see cameraFaceConfig).
func newAnalysisBuilder(faces *face.Pipeline, ests []estimators.Estimator) *analysisBuilder {
	b := &analysisBuilder{faces: faces, services: map[string]estimators.Estimator{}}
	for _, e := range ests {
		b.services[e.Name()] = e
	}
	return b
}

// check reports names a camera config cannot use, before any camera starts.
func (b *analysisBuilder) check(cfg camera.Config) error {
	for _, name := range cfg.Estimators {
		switch name {
		case detectFaces, hogPeople:
			continue
		}
		if _, ok := b.services[name]; !ok {
			return fmt.Errorf("camera %s: unknown estimator %q (use %s, %s or a served service name)", cfg.ID, name, detectFaces, hogPeople)
		}
	}
	return nil
}

func (b *analysisBuilder) build(cfg camera.Config) (camera.Analysis, error) {
	if err := b.check(cfg); err != nil {
		return camera.Analysis{}, err
	}
	var (
		an      camera.Analysis
		closers []func() error
		attrs   []estimators.Estimator
	)
	for _, name := range cfg.Estimators {
		switch name {
		case detectFaces:
			an.Detectors = append(an.Detectors, faceDetector{b.faces})
		case hogPeople:
			h, err := camera.NewHOGPeople(camera.HOGPeopleConfig{Scale: 1.1})
			if err != nil {
				return camera.Analysis{}, err
			}
			an.Detectors = append(an.Detectors, camera.Paced(h, camera.ClassBody, cfg.BodyCadence()))
			closers = append(closers, h.Close)
		case "body-detector":
			an.Detectors = append(an.Detectors, camera.Paced(serviceDetector{b.services[name], camera.ClassBody}, camera.ClassBody, cfg.BodyCadence()))
		default:
			attrs = append(attrs, b.services[name])
		}
	}
	if len(attrs) > 0 {
		an.Attributor = serviceAttributor{attrs}
	}
	if cfg.Identify.List != "" {
		if b.lists == nil {
			return camera.Analysis{}, fmt.Errorf("camera %s: identify.list needs watchlist.enabled", cfg.ID)
		}
		an.Attributor = identityAttributor{inner: an.Attributor, lists: b.lists, list: cfg.Identify.List}
	}
	an.Release = func() {
		for _, c := range closers {
			c()
		}
	}
	return an, nil
}

// faceDetector adapts the face pipeline's detection to a camera detector.
type faceDetector struct{ faces *face.Pipeline }

func (f faceDetector) Detect(ctx context.Context, frame gocv.Mat) ([]camera.Detection, error) {
	dets, err := f.faces.Detect(ctx, frame)
	if err != nil {
		return nil, err
	}
	w, h := float64(frame.Cols()), float64(frame.Rows())
	out := make([]camera.Detection, len(dets))
	for i, d := range dets {
		out[i] = camera.Detection{
			Class: camera.ClassFace,
			Box:   camera.Box{d.X1 / w, d.Y1 / h, d.X2 / w, d.Y2 / h}.Clamp(),
			Score: d.Score,
		}
	}
	return out, nil
}

// serviceDetector runs an Image API detection service on a frame and keeps
// the objects of one class.
type serviceDetector struct {
	service estimators.Estimator
	class   string
}

func (s serviceDetector) Detect(ctx context.Context, frame gocv.Mat) ([]camera.Detection, error) {
	sample := estimators.BorrowImage(frame, nil)
	defer sample.Close()
	if err := s.service.Process(ctx, sample); err != nil {
		return nil, fmt.Errorf("%s: %w", s.service.Name(), err)
	}
	var out []camera.Detection
	for _, o := range sample.Objects {
		var (
			box   camera.Box
			score float64
		)
		if o.String("class") != s.class {
			continue
		}
		if ok, err := o.Get("bbox", &box); !ok || err != nil {
			continue
		}
		o.Get("confidence", &score)
		out = append(out, camera.Detection{Class: s.class, Box: box.Clamp(), Score: score})
	}
	return out, nil
}

// serviceAttributor runs attribute services (age, gender, templates, ...) on
// a best-shot crop and returns the keys they add to the face object.
type serviceAttributor struct{ services []estimators.Estimator }

// detectionKeys are the keys a face object already has; they are not attributes.
var detectionKeys = map[string]bool{"id": true, "class": true, "bbox": true, "confidence": true}

func (s serviceAttributor) Attributes(ctx context.Context, crop gocv.Mat, d camera.Detection) (map[string]any, error) {
	if d.Class != camera.ClassFace {
		return nil, nil
	}
	obj := estimators.NewObject()
	obj.Set("id", 0)
	obj.Set("class", "face")
	obj.Set("bbox", d.Box)
	obj.Set("confidence", d.Score)
	sample := estimators.BorrowImage(crop, []*estimators.Object{obj})
	defer sample.Close()
	for _, e := range s.services {
		if err := e.Process(ctx, sample); err != nil {
			return nil, fmt.Errorf("%s: %w", e.Name(), err)
		}
	}
	out := map[string]any{}
	if len(sample.Objects) == 0 {
		return out, nil
	}
	o := sample.Objects[0]
	for _, k := range o.Keys() {
		if detectionKeys[k] {
			continue
		}
		raw, _ := o.Raw(k)
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			continue
		}
		// "$template" is binary by the API's convention; events call it "template"
		// so the camera's private-key filter keeps it out unless enabled.
		out[strings.TrimPrefix(k, "$")] = v
	}
	return out, nil
}

// cameraFaceConfig tunes the face pipeline for video frames: the extra
// passes that find tiny, border-cut or close-up faces in still photos cost
// several detector runs per frame, which a camera cannot afford.
func cameraFaceConfig(c face.Config) face.Config {
	c.Tiling, c.BorderPass, c.CloseUp = "off", "off", "off"
	return c
}

// identityAttributor adds "identity" (a *watchlist.Identity, or nil for
// someone not on the list) to a face track's attributes.
type identityAttributor struct {
	inner camera.Attributor
	lists *watchlist.Service
	list  string
}

func (a identityAttributor) Attributes(ctx context.Context, crop gocv.Mat, d camera.Detection) (map[string]any, error) {
	if d.Class != camera.ClassFace {
		return nil, nil
	}
	out := map[string]any{}
	if a.inner != nil {
		attrs, err := a.inner.Attributes(ctx, crop, d)
		if err != nil {
			return nil, err
		}
		for k, v := range attrs {
			out[k] = v
		}
	}
	id, err := a.lists.Identify(ctx, a.list, crop)
	if err != nil {
		return nil, fmt.Errorf("identify: %w", err)
	}
	out["identity"] = id
	return out, nil
}
