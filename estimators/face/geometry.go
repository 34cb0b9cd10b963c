package face

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// canonicalFace is MediaPipe's canonical 3D face: the 468 mesh vertices in
// centimetres (x towards the image right of a face looking at the camera, y
// up, z towards the camera) and the weighted landmarks its Procrustes fit uses.
type canonicalFace struct {
	vertices [meshPoints][3]float64
	basis    []weightedLandmark
}

type weightedLandmark struct {
	index  int
	weight float64
}

// parseGeometry reads the fields we need from MediaPipe's geometry pipeline
// metadata protobuf:
//
//	GeometryPipelineMetadata { Mesh3d canonical_mesh = 1; repeated WeightedLandmarkRef procrustes_landmark_basis = 2; ... }
//	Mesh3d { vertex_type = 1; primitive_type = 2; repeated float vertex_buffer = 3; repeated uint32 index_buffer = 4; }
//	WeightedLandmarkRef { uint32 landmark_id = 1; float weight = 2; }
//
// The vertex buffer of VERTEX_PT holds five floats a vertex: x, y, z, u, v.
func parseGeometry(b []byte) (*canonicalFace, error) {
	var floats []float64
	var basis []weightedLandmark
	err := walkProto(b, func(field int, wire int, v uint64, sub []byte) error {
		switch {
		case field == 1 && wire == 2:
			return walkProto(sub, func(field int, wire int, v uint64, sub []byte) error {
				if field != 3 {
					return nil
				}
				switch wire {
				case 5:
					floats = append(floats, float64(math.Float32frombits(uint32(v))))
				case 2: // packed
					if len(sub)%4 != 0 {
						return errors.New("packed vertex buffer is not a whole number of floats")
					}
					for i := 0; i < len(sub); i += 4 {
						floats = append(floats, float64(math.Float32frombits(binary.LittleEndian.Uint32(sub[i:]))))
					}
				}
				return nil
			})
		case field == 2 && wire == 2:
			w := weightedLandmark{index: -1}
			err := walkProto(sub, func(field int, wire int, v uint64, _ []byte) error {
				switch {
				case field == 1 && wire == 0:
					w.index = int(v)
				case field == 2 && wire == 5:
					w.weight = float64(math.Float32frombits(uint32(v)))
				}
				return nil
			})
			if err != nil {
				return err
			}
			if w.index < 0 || w.index >= meshPoints || !(w.weight > 0) {
				return fmt.Errorf("procrustes landmark %d with weight %v is out of range", w.index, w.weight)
			}
			basis = append(basis, w)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("face geometry: %w", err)
	}
	if len(floats) != meshPoints*5 {
		return nil, fmt.Errorf("face geometry: canonical mesh has %d vertex floats, want %d (468 x 5)", len(floats), meshPoints*5)
	}
	if len(basis) < 3 {
		return nil, fmt.Errorf("face geometry: %d procrustes landmarks, want at least 3", len(basis))
	}
	cf := &canonicalFace{basis: basis}
	for i := range cf.vertices {
		cf.vertices[i] = [3]float64{floats[5*i], floats[5*i+1], floats[5*i+2]}
	}
	return cf, nil
}

// walkProto calls fn for each field of a protobuf message: varints and
// fixed-width values in v, length-delimited bytes in sub.
func walkProto(b []byte, fn func(field, wire int, v uint64, sub []byte) error) error {
	for len(b) > 0 {
		key, n := binary.Uvarint(b)
		if n <= 0 {
			return errors.New("bad field key")
		}
		b = b[n:]
		field, wire := int(key>>3), int(key&7)
		var v uint64
		var sub []byte
		switch wire {
		case 0:
			v, n = binary.Uvarint(b)
			if n <= 0 {
				return errors.New("bad varint")
			}
			b = b[n:]
		case 1:
			if len(b) < 8 {
				return errors.New("truncated fixed64")
			}
			v, b = binary.LittleEndian.Uint64(b), b[8:]
		case 2:
			l, n := binary.Uvarint(b)
			if n <= 0 || l > uint64(len(b)-n) {
				return errors.New("bad length")
			}
			sub, b = b[n:n+int(l)], b[n+int(l):]
		case 5:
			if len(b) < 4 {
				return errors.New("truncated fixed32")
			}
			v, b = uint64(binary.LittleEndian.Uint32(b)), b[4:]
		default:
			return fmt.Errorf("unsupported wire type %d", wire)
		}
		if err := fn(field, wire, v, sub); err != nil {
			return err
		}
	}
	return nil
}
