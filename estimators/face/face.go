// Package face is the shared face pipeline every face service builds on:
// BlazeFace detection (anchors, box decoding, weighted NMS), the 468-point
// face mesh on a rotation-aligned crop, the 21 "fda" points, head pose
// angles, and aligned crops for attribute and embedding networks.
//
// It works on gocv images and knows nothing about requests or JSON.
package face

import (
	"context"
	"errors"

	"gocv.io/x/gocv"

	"imageapid/models"
)

// Point is a 2D point in image pixels.
type Point struct{ X, Y float64 }

// Detection is one face found by the detector, in pixels of the image.
type Detection struct {
	X1, Y1, X2, Y2 float64
	Score          float64
	// Keypoints are BlazeFace's six: right eye, left eye (the subject's),
	// nose tip, mouth centre, right ear tragion, left ear tragion.
	Keypoints [6]Point
}

// Face is a detection with its mesh, fda points and head pose.
type Face struct {
	Detection
	// Mesh holds the 468 mesh points: x, y in image pixels, z in the same scale.
	Mesh [][3]float64
	// FDA holds the 21 fda points in the order of the Image API (left = image left).
	FDA [21][3]float64
	// Yaw, Pitch and Roll are degrees: yaw positive when the subject turns to
	// their left, pitch positive looking up, roll positive clockwise in the image.
	Yaw, Pitch, Roll float64
}

// LeftEye and RightEye are the image-left and image-right eye centres (fda points 7 and 10).
func (f *Face) LeftEye() Point  { return Point{f.FDA[7][0], f.FDA[7][1]} }
func (f *Face) RightEye() Point { return Point{f.FDA[10][0], f.FDA[10][1]} }

// Config tunes detection.
type Config struct {
	MinScore float64 `yaml:"min_score"`
	MaxFaces int     `yaml:"max_faces"`
}

// Pipeline runs detection and fitting with models from the runtime.
type Pipeline struct {
	cfg Config
}

// New loads the pipeline's models from the runtime.
func New(rt *models.Runtime, cfg Config) (*Pipeline, error) {
	return &Pipeline{cfg: cfg}, nil
}

// Detect finds faces in a BGR image, most confident first.
func (p *Pipeline) Detect(ctx context.Context, img gocv.Mat) ([]Detection, error) {
	return nil, errors.New("face detection: not implemented yet")
}

// Fit runs the mesh on one detection and derives the fda points and angles.
func (p *Pipeline) Fit(ctx context.Context, img gocv.Mat, d Detection) (Face, error) {
	return Face{}, errors.New("face fitting: not implemented yet")
}
