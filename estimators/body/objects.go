package body

import (
	"context"
	"fmt"

	"gocv.io/x/gocv"

	"imageapid/models"
)

// COCO-80 class indices (0-based, the order CenterNet's heatmap uses) of the
// objects a face can be shown on.
const (
	ClassTV        = 62
	ClassLaptop    = 63
	ClassCellPhone = 67
	ClassBook      = 73
)

// Object is one detected COCO object in image pixels.
type Object struct {
	Class          int
	Score          float64
	X1, Y1, X2, Y2 float64
}

// ObjectDetector finds objects of chosen COCO classes with the CenterNet
// that also serves body detection.
type ObjectDetector struct{ net *centerNet }

// NewObjectDetector loads CenterNet (the CenterNetModelName entry) from the runtime.
func NewObjectDetector(rt *models.Runtime) (*ObjectDetector, error) {
	cfg, err := Config{Detector: "centernet", Model: CenterNetModelName}.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("object detector: %w", err)
	}
	cn, err := newCenterNet(rt, cfg)
	if err != nil {
		return nil, fmt.Errorf("object detector: %w", err)
	}
	return &ObjectDetector{net: cn}, nil
}

// Detect returns the objects of the given classes scoring at least
// minScore, most confident first within each class.
func (d *ObjectDetector) Detect(ctx context.Context, img gocv.Mat, classes []int, minScore float64) ([]Object, error) {
	if img.Empty() {
		return nil, fmt.Errorf("object detector: empty image")
	}
	found, err := d.net.detectClasses(ctx, img, classes, minScore)
	if err != nil {
		return nil, fmt.Errorf("object detector: %w", err)
	}
	var out []Object
	for _, k := range classes {
		for _, b := range found[k] {
			out = append(out, Object{Class: k, Score: b.score, X1: b.box[0], Y1: b.box[1], X2: b.box[2], Y2: b.box[3]})
		}
	}
	return out, nil
}
