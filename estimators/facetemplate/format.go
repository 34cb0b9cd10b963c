// Package facetemplate owns face templates: the embedding networks (chosen
// by name, with their input layout and normalization), the versioned binary
// template blob, the distance between two templates and the calibration
// that turns a distance into false acceptance and rejection rates and a
// score.
package facetemplate

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// A template blob is a 12-byte header then the L2-normalized embedding as
// little-endian float32:
//
//	0..3   magic "IAFT"
//	4..5   format version (uint16 LE)
//	6..7   model id (uint16 LE): which network and preprocessing made it
//	8..11  dimension (uint32 LE)
//
// so its length is a multiple of 4 and template_size (length / 4) is
// 3 + dimension.
const (
	magic         = "IAFT"
	FormatVersion = 1
	headerSize    = 12
)

// Template is a decoded template.
type Template struct {
	ModelID uint16
	Vector  []float32
}

// Encode writes a template blob; the vector is L2-normalized on the way.
func Encode(modelID uint16, vec []float32) []byte {
	var norm float64
	for _, v := range vec {
		norm += float64(v) * float64(v)
	}
	norm = math.Sqrt(norm)
	if norm == 0 {
		norm = 1
	}
	b := make([]byte, headerSize+4*len(vec))
	copy(b, magic)
	binary.LittleEndian.PutUint16(b[4:], FormatVersion)
	binary.LittleEndian.PutUint16(b[6:], modelID)
	binary.LittleEndian.PutUint32(b[8:], uint32(len(vec)))
	for i, v := range vec {
		binary.LittleEndian.PutUint32(b[headerSize+4*i:], math.Float32bits(float32(float64(v)/norm)))
	}
	return b
}

// Errors Decode returns, wrapped with details.
var (
	ErrNotTemplate   = errors.New("not a face template")
	ErrVersion       = errors.New("unsupported template format version")
	ErrModel         = errors.New("template made by another model")
	ErrLength        = errors.New("template has the wrong length")
	ErrNotNormalized = errors.New("template vector is not unit length")
)

// Decode reads a template blob made by the model with id wantModel.
func Decode(b []byte, wantModel uint16) (Template, error) {
	if len(b) < headerSize || string(b[:4]) != magic {
		return Template{}, fmt.Errorf("%w (%d bytes without the template header)", ErrNotTemplate, len(b))
	}
	if v := binary.LittleEndian.Uint16(b[4:]); v != FormatVersion {
		return Template{}, fmt.Errorf("%w: version %d, this server reads version %d", ErrVersion, v, FormatVersion)
	}
	if m := binary.LittleEndian.Uint16(b[6:]); m != wantModel {
		return Template{}, fmt.Errorf("%w: model id %d, this server's extractor is model id %d", ErrModel, m, wantModel)
	}
	dim := binary.LittleEndian.Uint32(b[8:])
	if uint64(len(b)) != headerSize+4*uint64(dim) {
		return Template{}, fmt.Errorf("%w: %d bytes, a %d-dimensional template has %d", ErrLength, len(b), dim, headerSize+4*uint64(dim))
	}
	vec := make([]float32, dim)
	var norm float64
	for i := range vec {
		v := math.Float32frombits(binary.LittleEndian.Uint32(b[headerSize+4*i:]))
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return Template{}, fmt.Errorf("%w: value %d is not finite", ErrNotNormalized, i)
		}
		vec[i] = v
		norm += float64(v) * float64(v)
	}
	if math.Abs(norm-1) > 1e-3 {
		return Template{}, fmt.Errorf("%w (squared norm %.4f)", ErrNotNormalized, norm)
	}
	return Template{ModelID: wantModel, Vector: vec}, nil
}

// Distance is the squared Euclidean distance between two unit vectors
// (2 - 2 cos), in [0, 4]: 0 for identical templates.
func Distance(a, b []float32) (float64, error) {
	if len(a) != len(b) {
		return 0, fmt.Errorf("%w: dimensions %d and %d differ", ErrLength, len(a), len(b))
	}
	var d float64
	for i := range a {
		x := float64(a[i]) - float64(b[i])
		d += x * x
	}
	return d, nil
}
