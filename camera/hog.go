package camera

/*
#cgo !windows pkg-config: opencv4
#cgo CXXFLAGS: --std=c++11
#include <stdlib.h>
#include "hog.h"
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"image"
	"sync"
	"unsafe"

	"gocv.io/x/gocv"
)

// HOGPeopleConfig tunes the HOG people detector. Zero values take defaults.
type HOGPeopleConfig struct {
	// Width is the width frames are resized to before detection (keeping the
	// aspect ratio); 0 or a width at least the frame's keeps the frame's size.
	// HOG finds people at least about 100 px tall at the width it sees.
	Width int `yaml:"width"`
	// HitThreshold is the SVM margin a window must pass (default 0).
	HitThreshold float64 `yaml:"hit_threshold"`
	// WinStride is the window step in pixels, a multiple of 8 (default 8).
	WinStride int `yaml:"win_stride"`
	// Scale is the pyramid step (default 1.05; 1.1 is about twice as fast).
	Scale float64 `yaml:"scale"`
	// GroupThreshold is how many overlapping hits make a detection (default 2).
	GroupThreshold float64 `yaml:"group_threshold"`
	// MinScore drops grouped detections whose SVM margin is lower (default 0).
	MinScore float64 `yaml:"min_score"`
	// Margins reports the raw SVM margins as scores instead of their
	// calibrated probabilities (for fitting HOGScore).
	Margins bool `yaml:"-"`
}

// HOGPeople is OpenCV's classic HOG + linear SVM pedestrian detector
// (Dalal-Triggs, trained on upright people): a real body detector with no
// model files, used as the fallback body detector and in tests. It reports
// detections of class ClassBody. It is safe for
// concurrent use (calls are serialized).
//
// Its boxes are the person inside the detection window (Dalal and Triggs'
// 64x128 window has about 16 pixels of margin around the person on every
// side), and its scores are the margins calibrated by HOGScore.
type HOGPeople struct {
	cfg   HOGPeopleConfig
	mu    sync.Mutex
	hog   C.camera_hog
	small gocv.Mat
}

const hogMaxBoxes = 256

// The share of the detection window's width and height on each side of the
// person: 16 pixels of the 64x128 window (Dalal and Triggs 2005, section 6.1).
const (
	hogMarginX = 16.0 / 64
	hogMarginY = 16.0 / 128
)

// NewHOGPeople builds the detector; Close releases it.
func NewHOGPeople(cfg HOGPeopleConfig) (*HOGPeople, error) {
	if cfg.WinStride <= 0 {
		cfg.WinStride = 8
	}
	if cfg.WinStride%8 != 0 {
		return nil, fmt.Errorf("hog people: win_stride %d is not a multiple of 8", cfg.WinStride)
	}
	if cfg.Scale <= 1 {
		cfg.Scale = 1.05
	}
	if cfg.GroupThreshold <= 0 {
		cfg.GroupThreshold = 2
	}
	h := C.camera_hog_new()
	if h == nil {
		return nil, errors.New("hog people: OpenCV could not build the descriptor")
	}
	return &HOGPeople{cfg: cfg, hog: h, small: gocv.NewMat()}, nil
}

// Close releases the native detector. Detect must not be called afterwards.
func (h *HOGPeople) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.hog != nil {
		C.camera_hog_free(h.hog)
		h.hog = nil
		h.small.Close()
	}
	return nil
}

// Detect finds people in a BGR (or gray) frame.
func (h *HOGPeople) Detect(ctx context.Context, frame gocv.Mat) ([]Detection, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if frame.Empty() {
		return nil, errors.New("hog people: empty frame")
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.hog == nil {
		return nil, errors.New("hog people: detector closed")
	}
	img := frame
	if h.cfg.Width > 0 && h.cfg.Width < frame.Cols() {
		height := frame.Rows() * h.cfg.Width / frame.Cols()
		gocv.Resize(frame, &h.small, image.Pt(h.cfg.Width, height), 0, 0, gocv.InterpolationArea)
		img = h.small
	}
	var out [hogMaxBoxes]C.camera_hog_box
	var msg [256]C.char
	n := C.camera_hog_detect(h.hog, unsafe.Pointer(img.Ptr()), C.double(h.cfg.HitThreshold), C.int(h.cfg.WinStride),
		C.double(h.cfg.Scale), C.double(h.cfg.GroupThreshold), &out[0], hogMaxBoxes, &msg[0], C.int(len(msg)))
	if n < 0 {
		return nil, fmt.Errorf("hog people: %s", C.GoString(&msg[0]))
	}
	w, ht := img.Cols(), img.Rows()
	dets := make([]Detection, 0, min(int(n), hogMaxBoxes))
	for _, b := range out[:min(int(n), hogMaxBoxes)] {
		score := float64(b.score)
		if score < h.cfg.MinScore {
			continue
		}
		mx, my := float64(b.w)*hogMarginX, float64(b.h)*hogMarginY
		r := image.Rect(int(float64(b.x)+mx+0.5), int(float64(b.y)+my+0.5), int(float64(b.x+b.w)-mx+0.5), int(float64(b.y+b.h)-my+0.5))
		if !h.cfg.Margins {
			score = HOGScore.Probability(score)
		}
		dets = append(dets, Detection{Class: ClassBody, Box: BoxFromPixels(r, w, ht), Score: score})
	}
	return dets, nil
}
