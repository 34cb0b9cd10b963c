package estimators

import (
	"fmt"
	"log/slog"

	"imageapid/estimators/face"
	"imageapid/estimators/facecache"
	"imageapid/models"
)

// Deps is what an estimator is built from.
type Deps struct {
	Models *models.Runtime
	Faces  *face.Pipeline
	// FaceCache, when not nil, keeps the faces found in an image's bytes
	// and the networks' outputs on them across samples (requests), so that
	// services called one after the other on the same image detect, fit and
	// run each network once. Samples without encoded bytes (camera frames)
	// bypass it.
	FaceCache *facecache.Cache
	// Settings decodes the config section of the named service into v (a
	// pointer to the estimator's own settings struct, pre-filled with its
	// defaults); a missing section leaves v as it is.
	Settings func(service string, v any) error
	Log      *slog.Logger
}

// Factory builds one estimator.
type Factory func(Deps) (Estimator, error)

// Factories lists every service by name. Adding a service means adding its
// file and one line here.
func Factories() map[string]Factory {
	return map[string]Factory{
		"face-detector-face-fitter":        newFaceFitter,
		"face-detector-template-extractor": newTemplateExtractor,
		"verify-matcher":                   newVerifyMatcher,
		"body-detector":                    newBodyDetector,
		"age-estimator":                    newAgeEstimator,
		"gender-estimator":                 newGenderEstimator,
		"emotion-estimator":                newEmotionEstimator,
		"mask-estimator":                   newMaskEstimator,
		"face-detector-liveness-estimator": newLivenessEstimator,
		"liveness-anti-spoofing":           newAntiSpoofing,
		"quality-liveness-anti-spoofing":   newQualityLiveness,
		"quality-assessment-estimator":     newQualityAssessor,
	}
}

// Build constructs the named services (all of them when names is empty).
func Build(d Deps, names []string) ([]Estimator, error) {
	all := Factories()
	if len(names) == 0 {
		for n := range all {
			names = append(names, n)
		}
	}
	var out []Estimator
	for _, n := range names {
		f, ok := all[n]
		if !ok {
			return nil, fmt.Errorf("unknown service %q", n)
		}
		e, err := f(d)
		if err != nil {
			return nil, fmt.Errorf("service %s: %w", n, err)
		}
		if d.FaceCache != nil {
			e = withFaceCache{Estimator: e, cache: d.FaceCache}
		}
		out = append(out, e)
	}
	return out, nil
}
