package estimators

import (
	"context"
	"fmt"
	"strings"
)

// RunAll runs services in order on one sample, as a client calling each
// service's route with the previous one's objects would, but on one decoded
// image: each service reads the objects the ones before it wrote, and the
// sample's face detection and mesh run once for all of them. The first
// error stops the chain; a refusal (an InputError) names the service that
// refused, and other errors are wrapped with it.
//
// The HTTP route /v1/process and in-process callers share it.
func RunAll(ctx context.Context, services []Estimator, s *Sample) error {
	for _, e := range services {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("%s: %w", e.Name(), err)
		}
		if e.NeedsImage() && !s.HasImage() {
			return BadInput("%s: field $image is required", e.Name())
		}
		if err := e.Process(ctx, s); err != nil {
			if msg, ok := IsInputError(err); ok {
				return &InputError{Msg: e.Name() + ": " + msg}
			}
			return fmt.Errorf("%s: %w", e.Name(), err)
		}
	}
	return nil
}

// Pick returns the named services from all, in the order of names (a name
// may repeat); it fails naming every name all does not hold.
func Pick(all []Estimator, names []string) ([]Estimator, error) {
	byName := make(map[string]Estimator, len(all))
	for _, e := range all {
		byName[e.Name()] = e
	}
	out := make([]Estimator, 0, len(names))
	var unknown []string
	for _, n := range names {
		e, ok := byName[n]
		if !ok {
			unknown = append(unknown, fmt.Sprintf("%q", n))
			continue
		}
		out = append(out, e)
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("unknown service %s", strings.Join(unknown, ", "))
	}
	return out, nil
}
