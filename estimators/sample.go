package estimators

import (
	"crypto/sha256"

	"gocv.io/x/gocv"

	"imageapid/estimators/facecache"
)

// Sample is one request's data: the encoded image as it came in (echoed back
// as "$image"), the decoded image, the objects in order and any top-level keys
// a service adds (such as "verification").
type Sample struct {
	// Encoded is the image file as received; nil when the request had no
	// image. Image must be what Encoded decodes to: a face cache finds the
	// image's faces by Encoded's digest.
	Encoded []byte
	// Image is the decoded image in BGR order, upright (EXIF orientation
	// applied); empty when the request had no image, and in a sample from
	// NewEncodedSample until Pixels decodes it.
	Image   gocv.Mat
	Objects []*Object
	// Extra holds top-level keys after "$image" and "objects".
	Extra *Object

	memo map[string]any
	// faces, when set, is where the faces of Encoded are looked up before
	// they are detected and fitted (see Deps.FaceCache).
	faces *facecache.Cache
	// digest is the SHA-256 of Encoded, once computed.
	digest *[sha256.Size]byte
	// borrowed marks an image the sample must not free (a camera frame).
	borrowed bool
	// format, width and height describe Encoded while it is not decoded
	// (format is empty once it is, or when it never is).
	format        string
	width, height int
}

// NewEncodedSample checks an encoded image as DecodeImage does (format,
// size, maxPixels, truncation) but decodes it only when a service first
// needs its pixels (Pixels): a service whose faces and network outputs for
// these bytes are all in the face cache never does.
func NewEncodedSample(encoded []byte, maxPixels int, objects []*Object) (*Sample, error) {
	format, w, h, err := checkEncoded(encoded, maxPixels)
	if err != nil {
		return nil, err
	}
	s := NewSample(encoded, gocv.Mat{}, objects)
	s.format, s.width, s.height = format, w, h
	return s, nil
}

// Decoded reports whether the sample holds decoded pixels (a sample from
// NewEncodedSample does once a service needed them).
func (s *Sample) Decoded() bool { return s.Image.Ptr() != nil && !s.Image.Empty() }

// Pixels returns the decoded image, decoding it on first use.
func (s *Sample) Pixels() (gocv.Mat, error) {
	if s.format != "" {
		img, err := decodeChecked(s.Encoded, s.format)
		if err != nil {
			return gocv.Mat{}, err
		}
		s.Image, s.format = img, ""
	}
	if !s.Decoded() {
		return gocv.Mat{}, BadInput("field $image is required")
	}
	return s.Image, nil
}

// NewSample wraps a decoded image (which the sample then owns) and objects.
func NewSample(encoded []byte, img gocv.Mat, objects []*Object) *Sample {
	return &Sample{Encoded: encoded, Image: img, Objects: objects, Extra: NewObject()}
}

// BorrowImage returns a sample over an image its caller keeps owning (a
// camera frame or crop): Close leaves the image alone. It has no encoded
// bytes, so responses built from it carry no "$image".
func BorrowImage(img gocv.Mat, objects []*Object) *Sample {
	return &Sample{Image: img, Objects: objects, Extra: NewObject(), borrowed: true}
}

// cached reports whether the sample looks its faces and their network
// outputs up in a face cache: it has one and encoded bytes to key them by.
func (s *Sample) cached() bool { return s.faces != nil && len(s.Encoded) > 0 }

// imageKey is the face cache key of the sample's bytes under the given
// pipeline settings ("" for network outputs, which depend on the image and
// the face only); the bytes are hashed once per sample.
func (s *Sample) imageKey(settings string) facecache.Key {
	if s.digest == nil {
		k := facecache.KeyOf(s.Encoded, "")
		s.digest = &k.Digest
	}
	return facecache.Key{Digest: *s.digest, Settings: settings}
}

// HasImage reports whether the sample carries a decoded image.
func (s *Sample) HasImage() bool { return s.format != "" || s.Decoded() }

// Width and Height are the (upright) image's size in pixels.
func (s *Sample) Width() int {
	if !s.Decoded() {
		return s.width
	}
	return s.Image.Cols()
}

func (s *Sample) Height() int {
	if !s.Decoded() {
		return s.height
	}
	return s.Image.Rows()
}

// Memo returns the value cached under key, computing it once per sample. A
// sample is processed by one goroutine at a time, so no lock is needed.
func (s *Sample) Memo(key string, compute func() (any, error)) (any, error) {
	if v, ok := s.memo[key]; ok {
		return v, nil
	}
	v, err := compute()
	if err != nil {
		return nil, err
	}
	if s.memo == nil {
		s.memo = map[string]any{}
	}
	s.memo[key] = v
	return v, nil
}

// Close frees the decoded image and anything memoized that holds native memory.
func (s *Sample) Close() {
	if s.Image.Ptr() != nil && !s.borrowed {
		s.Image.Close()
	}
	for _, v := range s.memo {
		if c, ok := v.(interface{ Close() error }); ok {
			c.Close()
		}
	}
	s.memo = nil
}
