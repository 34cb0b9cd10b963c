package face_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"gocv.io/x/gocv"

	"imageapid/estimators"
	"imageapid/estimators/face"
	"imageapid/internal/testenv"
	"imageapid/models"
)

// newPipeline builds a pipeline over the built models with cfg.
func newPipeline(t testing.TB, rt *models.Runtime, cfg face.Config) *face.Pipeline {
	t.Helper()
	p, err := face.New(rt, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// decode reads an image the way the daemon does (EXIF orientation applied).
func decode(t testing.TB, b []byte) gocv.Mat {
	t.Helper()
	img, err := estimators.DecodeImage(b, 10_000_000)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { img.Close() })
	return img
}

func fixture(t testing.TB, name string) gocv.Mat {
	t.Helper()
	return decode(t, testenv.ReadFixture(t, name))
}

type box struct{ X, Y, W, H float64 }

type testFile struct {
	Path   string   `json:"path"`
	Tasks  []string `json:"tasks"`
	Labels struct {
		NumFaces *int `json:"num_faces"`
	} `json:"labels"`
	Geometry struct {
		FaceBoxes   []box `json:"face_boxes"`
		Landmarks68 []struct {
			Points [][2]float64 `json:"points"`
		} `json:"landmarks_68"`
		NumFacesMin *int `json:"num_faces_min"`
	} `json:"geometry"`
}

func (f testFile) has(task string) bool {
	for _, t := range f.Tasks {
		if t == task {
			return true
		}
	}
	return false
}

// testdataFiles returns the shared testdata folder and its files with the
// given task, skipping when the shared data is absent.
func testdataFiles(t testing.TB, task string) (string, []testFile) {
	t.Helper()
	dir := testenv.Shared(t, "testdata")
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Files []testFile `json:"files"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	var out []testFile
	for _, f := range m.Files {
		if f.has(task) && filepath.Ext(f.Path) != ".mp4" {
			out = append(out, f)
		}
	}
	return dir, out
}

// hit is the evaluation's rule: the detected box contains the labelled box's
// centre and is 0.5-3x as wide.
func hit(d face.Detection, b box) bool {
	cx, cy := b.X+b.W/2, b.Y+b.H/2
	w := d.X2 - d.X1
	return d.X1 <= cx && cx <= d.X2 && d.Y1 <= cy && cy <= d.Y2 && w >= 0.5*b.W && w <= 3*b.W
}
