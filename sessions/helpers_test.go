package sessions

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"gocv.io/x/gocv"

	"imageapid/estimators/face"
	"imageapid/estimators/facetemplate"
	"imageapid/internal/testenv"
)

// testAnalyzer builds an analyzer from the real models for one test.
func testAnalyzer(t testing.TB) *Analyzer {
	t.Helper()
	rt := testenv.Runtime(t, "xnnpack")
	faces, err := face.New(rt, face.Config{})
	if err != nil {
		t.Fatal(err)
	}
	a, err := LoadAnalyzer(rt, faces, facetemplate.DefaultNetwork, false)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// kioskClip is one clip of ../shared/kiosk/manifest.json.
type kioskClip struct {
	File   string  `json:"file"`
	Kind   string  `json:"kind"`
	FPS    float64 `json:"fps"`
	Events []struct {
		T0   float64 `json:"t0"`
		T1   float64 `json:"t1"`
		What string  `json:"what"`
	} `json:"events"`
}

func kioskClips(t testing.TB) (string, []kioskClip) {
	t.Helper()
	dir := testenv.Shared(t, "kiosk")
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Clips []kioskClip `json:"clips"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return dir, m.Clips
}

// eachFrame calls fn with every step-th frame of a video and its time in ms.
func eachFrame(t testing.TB, path string, step int, fn func(img gocv.Mat, tMS int64) bool) {
	t.Helper()
	vc, err := gocv.VideoCaptureFile(path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer vc.Close()
	fps := vc.Get(gocv.VideoCaptureFPS)
	if fps <= 0 {
		fps = 30
	}
	img := gocv.NewMat()
	defer img.Close()
	for i := 0; ; i++ {
		if !vc.Read(&img) || img.Empty() {
			return
		}
		if i%step != 0 {
			continue
		}
		if !fn(img, int64(float64(i)*1000/fps+0.5)) {
			return
		}
	}
}
