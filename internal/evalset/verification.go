package evalset

import (
	"context"
	"fmt"
)

// VerificationResult is 1:1 verification measured on a set's pairs.
type VerificationResult struct {
	Verification
	// AccuracyAtConfigured is the accuracy at the threshold the caller configured.
	AccuracyAtConfigured, ConfiguredThreshold float64
	// Files and NoTemplate count the files of the pairs and those where no
	// template could be made (their pairs count as maximally distant).
	Files, NoTemplate int
}

// EvalVerification makes a template of every file of the set's pairs with
// tpl (nil when no face is found), scores the pairs with dist and reports
// the figures; maxDistance stands for pairs with a missing template.
func EvalVerification(ctx context.Context, s *Set, threshold, maxDistance float64,
	tpl func(ctx context.Context, path string) ([]float32, error),
	dist func(a, b []float32) (float64, error)) (VerificationResult, error) {
	var r VerificationResult
	cache := map[string][]float32{}
	get := func(rel string) ([]float32, error) {
		if v, ok := cache[rel]; ok {
			return v, nil
		}
		v, err := tpl(ctx, s.Path(rel))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", rel, err)
		}
		cache[rel] = v
		r.Files++
		if v == nil {
			r.NoTemplate++
		}
		return v, nil
	}
	var scored []ScoredPair
	for _, p := range s.Pairs {
		a, err := get(p.A)
		if err != nil {
			return r, err
		}
		b, err := get(p.B)
		if err != nil {
			return r, err
		}
		d := maxDistance
		if a != nil && b != nil {
			if d, err = dist(a, b); err != nil {
				return r, err
			}
		}
		scored = append(scored, ScoredPair{Distance: d, Same: p.Same})
	}
	r.Verification = Verify(scored)
	r.ConfiguredThreshold = threshold
	r.AccuracyAtConfigured = AccuracyAt(scored, threshold)
	return r, nil
}
