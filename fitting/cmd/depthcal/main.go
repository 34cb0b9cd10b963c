// Command depthcal measures, for the sessions' depth check
// (depth_min_residual), on the photos of ../shared/corpus/identities: how far a face's mesh
// points stand off the best homography between two views of it, for a
// head seen at two angles (two photos of one person whose yaws differ by
// at least 15 degrees) and for a flat picture turned (a frontal photo
// warped as a plane rotated about its vertical axis, kept where the fitter
// reads it turned by 15 degrees or more, as a session would). It prints
// both distributions and a threshold: the 2nd percentile of the heads',
// so that at most 2% of real turns read as flat, with the share of turned
// pictures it catches (the README says why the sessions enforce none by
// default).
//
//	go run ./fitting/cmd/depthcal --corpus ../shared/corpus
package main

import (
	"context"
	"flag"
	"fmt"
	"image"
	"math"
	"os"
	"path/filepath"
	"sort"

	"gocv.io/x/gocv"

	"imageapid/estimators/face"
	"imageapid/internal/evalenv"
	"imageapid/sessions"
)

// liveQuantile is the share of real turns the threshold may read as flat.
const liveQuantile = 0.02

// angles are the turns (degrees about the vertical axis) the flat photos
// are warped by, either way.
var angles = []float64{25, 35, 45}

type view struct {
	person string
	yaw    float64
	pts    []face.Point
	iod    float64
}

func main() {
	corpus := flag.String("corpus", "../shared/corpus", "the fitting corpus")
	manifest := flag.String("manifest", "models/manifest.json", "model manifest")
	dir := flag.String("models", "models/build", "model files")
	flag.Parse()
	if err := run(*corpus, *manifest, *dir); err != nil {
		fmt.Fprintln(os.Stderr, "depthcal:", err)
		os.Exit(1)
	}
}

func run(corpus, manifest, dir string) error {
	files, err := filepath.Glob(filepath.Join(corpus, "identities", "*", "*"))
	if err != nil || len(files) == 0 {
		return fmt.Errorf("no photos under %s/identities (%v)", corpus, err)
	}
	rt, faces, err := evalenv.Open(manifest, dir)
	if err != nil {
		return err
	}
	defer rt.Close()
	ctx := context.Background()
	var views []view
	var flat []float64
	for _, path := range files {
		img := gocv.IMRead(path, gocv.IMReadColor)
		if img.Empty() {
			continue
		}
		v, ok, err := look(ctx, faces, img)
		if err != nil {
			img.Close()
			return fmt.Errorf("%s: %w", path, err)
		}
		if ok {
			v.person = filepath.Base(filepath.Dir(path))
			views = append(views, v)
			if math.Abs(v.yaw) < 10 {
				for _, a := range angles {
					for _, sign := range []float64{-1, 1} {
						turned := turnFlat(img, sign*a)
						w, ok, err := look(ctx, faces, turned)
						turned.Close()
						if err != nil {
							img.Close()
							return fmt.Errorf("%s turned: %w", path, err)
						}
						if ok && math.Abs(w.yaw-v.yaw) >= 15 {
							if r, ok := sessions.PlanarResidual(v.pts, w.pts, w.iod); ok {
								flat = append(flat, r)
							}
						}
					}
				}
			}
		}
		img.Close()
	}
	var live []float64
	for i := range views {
		for j := range views {
			a, b := views[i], views[j]
			if i == j || a.person != b.person || math.Abs(a.yaw) >= 10 || math.Abs(b.yaw-a.yaw) < 15 {
				continue
			}
			if r, ok := sessions.PlanarResidual(a.pts, b.pts, b.iod); ok {
				live = append(live, r)
			}
		}
	}
	if len(live) == 0 || len(flat) == 0 {
		return fmt.Errorf("too few pairs: %d heads, %d flat pictures", len(live), len(flat))
	}
	sort.Float64s(live)
	sort.Float64s(flat)
	q := func(v []float64, p float64) float64 { return v[min(len(v)-1, int(p*float64(len(v))))] }
	fmt.Printf("photos with a face: %d of %d\n\n", len(views), len(files))
	fmt.Println("| views | pairs | p1 | p2 | p5 | p50 | p95 | p99 |")
	fmt.Println("| --- | --- | --- | --- | --- | --- | --- | --- |")
	for _, d := range []struct {
		name string
		v    []float64
	}{{"a head at two angles (same person, yaw apart >= 15)", live}, {"a flat photo turned (fitter yaw >= 15)", flat}} {
		fmt.Printf("| %s | %d | %.4f | %.4f | %.4f | %.4f | %.4f | %.4f |\n", d.name, len(d.v),
			q(d.v, .01), q(d.v, .02), q(d.v, .05), q(d.v, .5), q(d.v, .95), q(d.v, .99))
	}
	t := math.Floor(q(live, liveQuantile)*1000) / 1000
	caught := sort.SearchFloat64s(flat, t)
	fmt.Printf("\ndepth_min_residual: %.3f (heads under it: %.1f%%; turned flat photos caught: %d of %d, %.1f%%)\n",
		t, 100*float64(sort.SearchFloat64s(live, t))/float64(len(live)), caught, len(flat), 100*float64(caught)/float64(len(flat)))
	return nil
}

// look fits the largest face of img.
func look(ctx context.Context, faces *face.Pipeline, img gocv.Mat) (view, bool, error) {
	dets, err := faces.Detect(ctx, img)
	if err != nil || len(dets) == 0 {
		return view{}, false, err
	}
	f, err := faces.Fit(ctx, img, dets[face.Largest(dets)])
	if err != nil {
		return view{}, false, err
	}
	pts, iod, ok := sessions.DepthPoints(f.Mesh)
	return view{yaw: f.Yaw, pts: pts, iod: iod}, ok, nil
}

// turnFlat warps img as a flat picture rotated by deg about its vertical
// centre line, seen by a pinhole camera (focal length the image width) at
// twice the image width.
func turnFlat(img gocv.Mat, deg float64) gocv.Mat {
	w, h := float64(img.Cols()), float64(img.Rows())
	f, dist := w, 2*w
	th := deg * math.Pi / 180
	project := func(x, y float64) gocv.Point2f {
		X, Y := x-w/2, y-h/2
		xr, zr := X*math.Cos(th), dist+X*math.Sin(th)
		return gocv.Point2f{X: float32(w/2 + f*xr/zr), Y: float32(h/2 + f*Y/zr)}
	}
	src := gocv.NewPoint2fVectorFromPoints([]gocv.Point2f{{X: 0, Y: 0}, {X: float32(w), Y: 0}, {X: float32(w), Y: float32(h)}, {X: 0, Y: float32(h)}})
	defer src.Close()
	dst := gocv.NewPoint2fVectorFromPoints([]gocv.Point2f{project(0, 0), project(w, 0), project(w, h), project(0, h)})
	defer dst.Close()
	m := gocv.GetPerspectiveTransform2f(src, dst)
	defer m.Close()
	out := gocv.NewMat()
	gocv.WarpPerspective(img, &out, m, image.Pt(img.Cols(), img.Rows()))
	return out
}
