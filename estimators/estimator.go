// Package estimators holds one file per Image API service, each behind the
// small Estimator interface and listed by name in registry.go. Shared steps
// (face detection, the mesh, alignment) live in the face subpackage and are
// cached per Sample, so a request that needs them twice computes them once.
//
// Data flows one way: a Sample (decoded image plus ordered JSON objects) goes
// in, the estimator adds its fields to the Sample's objects. Nothing here knows
// about HTTP, MQTT or cameras.
package estimators

import (
	"context"
	"errors"
	"fmt"
)

// Estimator is one Image API service.
type Estimator interface {
	// Name is the service name, also its URL prefix: "age-estimator".
	Name() string
	// TakesImage reports whether the service offers /process/image; services
	// that need objects from another service only take samples.
	TakesImage() bool
	// NeedsImage reports whether a sample must carry "$image".
	NeedsImage() bool
	// Process reads s and adds its results to s.Objects (and s.Extra).
	Process(ctx context.Context, s *Sample) error
}

// InputError is a request the service cannot process as given; the HTTP layer
// answers it with 400 and the message as "detail".
type InputError struct{ Msg string }

func (e *InputError) Error() string { return e.Msg }

// BadInput returns an InputError with a formatted message.
func BadInput(format string, args ...any) error {
	return &InputError{Msg: fmt.Sprintf(format, args...)}
}

// IsInputError reports whether err (or what it wraps) is an InputError, and its message.
func IsInputError(err error) (string, bool) {
	var ie *InputError
	if errors.As(err, &ie) {
		return ie.Msg, true
	}
	return "", false
}

// Messages shared by several services and by the HTTP layer, worded as the
// original Image API words them.
const (
	MsgBadBase64         = "Failed to decode base64 string"
	MsgUnsupportedFormat = "This image format is not supported"
	MsgNoObjects         = "No object were passed"
	MsgManyFaces         = "More than one face detected"
)
