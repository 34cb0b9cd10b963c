package corpus

import (
	"errors"

	"gocv.io/x/gocv"

	"imageapid/estimators"
)

// Decode reads a corpus image as the daemon does, falling back to OpenCV
// for the few files in formats the daemon refuses (WebP saved as .jpg).
func Decode(b []byte) (gocv.Mat, error) {
	img, err := estimators.DecodeImage(b, 50_000_000)
	if _, refused := estimators.IsInputError(err); refused {
		img, err = gocv.IMDecode(b, gocv.IMReadColor)
		if err == nil && img.Empty() {
			err = errors.New("undecodable")
		}
	}
	return img, err
}
