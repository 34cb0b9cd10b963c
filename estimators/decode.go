package estimators

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"image"
	_ "image/jpeg" // DecodeConfig for JPEG headers
	_ "image/png"  // DecodeConfig for PNG headers

	"gocv.io/x/gocv"
)

// DecodeImage decodes a JPEG, PNG or BMP file to an upright BGR image. It
// reads the header first and refuses images over maxPixels before any pixel
// memory is allocated, and refuses truncated files rather than returning a
// half-grey picture.
func DecodeImage(b []byte, maxPixels int) (gocv.Mat, error) {
	format, _, _, err := checkEncoded(b, maxPixels)
	if err != nil {
		return gocv.Mat{}, err
	}
	return decodeChecked(b, format)
}

// checkEncoded reads an image file's header and refuses what DecodeImage
// refuses before decoding: an unknown format, no pixels, more than
// maxPixels, a truncated file. It returns the format and the upright size.
func checkEncoded(b []byte, maxPixels int) (format string, w, h int, err error) {
	format, w, h, err = imageHeader(b)
	if err != nil {
		return "", 0, 0, err
	}
	if w <= 0 || h <= 0 {
		return "", 0, 0, BadInput(MsgUnsupportedFormat)
	}
	if int64(w)*int64(h) > int64(maxPixels) {
		return "", 0, 0, BadInput("Image is too large: %dx%d pixels is more than the limit of %.1f megapixels",
			w, h, float64(maxPixels)/1e6)
	}
	if !complete(format, b) {
		return "", 0, 0, BadInput("%s: the %s file is truncated", MsgUnsupportedFormat, format)
	}
	if format == "jpeg" && exifOrientation(b) >= 5 { // turned a quarter
		w, h = h, w
	}
	return format, w, h, nil
}

// decodeChecked decodes a file checkEncoded accepted.
func decodeChecked(b []byte, format string) (gocv.Mat, error) {
	img, err := gocv.IMDecode(b, gocv.IMReadColor|gocv.IMReadIgnoreOrientation)
	if err != nil || img.Empty() {
		if err == nil {
			img.Close()
		}
		return gocv.Mat{}, BadInput(MsgUnsupportedFormat)
	}
	if format == "jpeg" {
		img = applyOrientation(img, exifOrientation(b))
	}
	return img, nil
}

func imageHeader(b []byte) (format string, w, h int, err error) {
	switch {
	case bytes.HasPrefix(b, []byte{0xFF, 0xD8, 0xFF}), bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")):
		cfg, f, err := image.DecodeConfig(bytes.NewReader(b))
		if err != nil {
			return "", 0, 0, BadInput(MsgUnsupportedFormat)
		}
		return f, cfg.Width, cfg.Height, nil
	case len(b) >= 26 && b[0] == 'B' && b[1] == 'M':
		// BITMAPINFOHEADER and later: int32 width at 18, int32 height at 22 (negative = top-down).
		w := int32(binary.LittleEndian.Uint32(b[18:22]))
		h := int32(binary.LittleEndian.Uint32(b[22:26]))
		if h < 0 {
			h = -h
		}
		return "bmp", int(w), int(h), nil
	}
	return "", 0, 0, BadInput(MsgUnsupportedFormat)
}

// complete reports whether an image file has its end: a JPEG's EOI marker after
// the scan data, or a PNG's IEND chunk.
func complete(format string, b []byte) bool {
	switch format {
	case "jpeg":
		sos := jpegScanStart(b)
		return sos > 0 && bytes.Contains(b[sos:], []byte{0xFF, 0xD9})
	case "png":
		return bytes.Contains(b[max(0, len(b)-64):], []byte("IEND"))
	}
	return true
}

// jpegScanStart walks the JPEG marker segments to the first start-of-scan
// and returns the offset after its header, or -1.
func jpegScanStart(b []byte) int {
	i := 2
	for i+4 <= len(b) {
		if b[i] != 0xFF {
			return -1
		}
		marker := b[i+1]
		if marker == 0xFF { // fill byte
			i++
			continue
		}
		n := int(binary.BigEndian.Uint16(b[i+2 : i+4]))
		if n < 2 || i+2+n > len(b) { // a segment longer than the file: truncated
			return -1
		}
		if marker == 0xDA {
			return i + 2 + n
		}
		i += 2 + n
	}
	return -1
}

// exifOrientation returns the EXIF Orientation tag (1-8) of a JPEG, or 1.
func exifOrientation(b []byte) int {
	i := 2
	for i+4 <= len(b) {
		if b[i] != 0xFF {
			return 1
		}
		marker := b[i+1]
		n := int(binary.BigEndian.Uint16(b[i+2 : i+4]))
		if marker == 0xDA || n < 2 || i+2+n > len(b) {
			return 1
		}
		seg := b[i+4 : i+2+n]
		if marker == 0xE1 && bytes.HasPrefix(seg, []byte("Exif\x00\x00")) {
			return tiffOrientation(seg[6:])
		}
		i += 2 + n
	}
	return 1
}

func tiffOrientation(t []byte) int {
	if len(t) < 8 {
		return 1
	}
	var bo binary.ByteOrder
	switch string(t[:2]) {
	case "II":
		bo = binary.LittleEndian
	case "MM":
		bo = binary.BigEndian
	default:
		return 1
	}
	ifd := int(bo.Uint32(t[4:8]))
	if ifd < 8 || ifd+2 > len(t) {
		return 1
	}
	count := int(bo.Uint16(t[ifd : ifd+2]))
	for e := 0; e < count; e++ {
		off := ifd + 2 + 12*e
		if off+12 > len(t) {
			return 1
		}
		if bo.Uint16(t[off:off+2]) == 0x0112 {
			v := int(bo.Uint16(t[off+8 : off+10]))
			if v >= 1 && v <= 8 {
				return v
			}
			return 1
		}
	}
	return 1
}

// applyOrientation turns a stored image upright according to an EXIF
// orientation value, consuming img.
func applyOrientation(img gocv.Mat, orientation int) gocv.Mat {
	type step struct {
		rotate *gocv.RotateFlag
		flip   int // -2: none, 0: vertical, 1: horizontal
	}
	cw, ccw, r180 := gocv.Rotate90Clockwise, gocv.Rotate90CounterClockwise, gocv.Rotate180Clockwise
	steps := map[int]step{
		2: {nil, 1}, 3: {&r180, -2}, 4: {nil, 0},
		5: {&cw, 1}, 6: {&cw, -2}, 7: {&cw, 0}, 8: {&ccw, -2},
	}
	s, ok := steps[orientation]
	if !ok {
		return img
	}
	if s.rotate != nil {
		out := gocv.NewMat()
		gocv.Rotate(img, &out, *s.rotate)
		img.Close()
		img = out
	}
	if s.flip != -2 {
		out := gocv.NewMat()
		gocv.Flip(img, &out, s.flip)
		img.Close()
		img = out
	}
	return img
}

// EncodeJPEG encodes a BGR image as JPEG (used by tests and the camera path).
func EncodeJPEG(img gocv.Mat, quality int) ([]byte, error) {
	buf, err := gocv.IMEncodeWithParams(gocv.JPEGFileExt, img, []int{gocv.IMWriteJpegQuality, quality})
	if err != nil {
		return nil, fmt.Errorf("encode jpeg: %w", err)
	}
	defer buf.Close()
	return append([]byte(nil), buf.GetBytes()...), nil
}
