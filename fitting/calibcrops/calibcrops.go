// Package calibcrops produces the face crops the model compiler calibrates
// int8 models on and gates them with: corpus photos run through the
// project's own face pipeline (detection, mesh fit, fda points), each
// photo's largest face aligned and cropped for each network exactly as the
// estimators crop it (see Layout). It sits between models/compiler and
// estimators/face so that neither imports the other.
package calibcrops

import (
	"context"
	"errors"
	"fmt"
	"image"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"gocv.io/x/gocv"

	"imageapid/estimators/attributes"
	"imageapid/estimators/face"
	"imageapid/models"
	"imageapid/models/compiler"
)

// Layout says how a network's input crop is cut from a fitted face.
type Layout int

const (
	// Attribute is the attribute networks' crop (estimators/attributes
	// Network.Crop): the ArcFace 5-point alignment scaled to the input side,
	// zoomed about the centre, replicated border.
	Attribute Layout = iota
	// ArcFace is the embedding networks' crop (face.AlignedCrop, as
	// estimators/facetemplate feeds MobileFaceNet): the 5-point alignment
	// at the input side, black border.
	ArcFace
)

func (l Layout) String() string {
	if l == ArcFace {
		return "arcface-aligned"
	}
	return "attribute-aligned"
}

// LayoutOf is the crop layout of a compiled model: the face embedding
// networks take ArcFace crops, the attribute networks the attribute crop.
func LayoutOf(model string) Layout {
	switch model {
	case "mobileface", "human_mobilefacenet":
		return ArcFace
	}
	return Attribute
}

// Crop cuts a size x size BGR crop of f from img with the layout; zoom
// (Attribute only; 0 means 1) below 1 shows more of the head. The caller
// closes the Mat.
func Crop(img gocv.Mat, f *face.Face, size int, l Layout, zoom float64) (gocv.Mat, error) {
	if l == ArcFace {
		return face.AlignedCrop(img, f, size)
	}
	if zoom == 0 {
		zoom = 1
	}
	return attributes.ZoomedCrop(img, f, size, zoom)
}

// Selection picks photos from corpus folders: every Stride-th file of each
// folder's sorted listing (recursively), starting at Offset.
type Selection struct {
	Name   string
	Folder []string // relative to the corpus
	Offset []int
	Stride []int
}

// CalibrationSelection are the photos activation ranges are measured on:
// every 9th of corpus/faces and every 8th (from the 2nd) of corpus/identities,
// about 215.
func CalibrationSelection() Selection {
	return Selection{Name: "calibration", Folder: []string{"faces", "identities"}, Offset: []int{0, 1}, Stride: []int{9, 8}}
}

// AgreementSelection are held-out photos for the int8 gates, disjoint from
// CalibrationSelection: every 9th of corpus/faces from the 6th and every 4th
// of corpus/identities from the 4th, about 320.
func AgreementSelection() Selection {
	return Selection{Name: "agreement", Folder: []string{"faces", "identities"}, Offset: []int{5, 3}, Stride: []int{9, 4}}
}

func (s Selection) String() string {
	var parts []string
	for i, f := range s.Folder {
		parts = append(parts, fmt.Sprintf("every %d%s of corpus/%s", s.Stride[i], offsetSuffix(s.Offset[i]), f))
	}
	return strings.Join(parts, " and ")
}

func offsetSuffix(o int) string {
	if o == 0 {
		return "th photo"
	}
	return fmt.Sprintf("th photo from #%d", o)
}

// files lists the selected photos, in a stable order.
func (s Selection) files(corpus string) ([]string, error) {
	var out []string
	for i, folder := range s.Folder {
		var all []string
		err := filepath.WalkDir(filepath.Join(corpus, folder), func(p string, e os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			switch strings.ToLower(filepath.Ext(p)) {
			case ".jpg", ".jpeg", ".png":
				if !e.IsDir() {
					all = append(all, p)
				}
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("calibration photos: %w", err)
		}
		sort.Strings(all)
		for k := s.Offset[i]; k < len(all); k += max(s.Stride[i], 1) {
			out = append(out, all[k])
		}
	}
	return out, nil
}

// fitted is one photo with its largest face.
type fitted struct {
	img  gocv.Mat
	face face.Face
}

// Faces are the selected photos' largest faces, found as the attribute
// estimators find the face of a whole image (estimators/attributes
// LocateLargest): the largest detected face, else the mesh fitted on the
// image's central four fifths (tight face crops the detector misses) when
// the mesh network sees a face there. Photos with neither are left out
// (the estimators would place points by the box's proportions). Close
// frees the images.
type Faces struct {
	sel     Selection
	photos  int
	fits    []fitted
	boxFits int
	skipped []string
}

// Find runs the pipeline over the selection's photos under corpus.
func Find(ctx context.Context, p *face.Pipeline, corpus string, sel Selection) (*Faces, error) {
	files, err := sel.files(corpus)
	if err != nil {
		return nil, err
	}
	fs := &Faces{sel: sel, photos: len(files)}
	for _, path := range files {
		if err := ctx.Err(); err != nil {
			fs.Close()
			return nil, err
		}
		f, img, how, err := locate(ctx, p, path)
		if err != nil {
			fs.Close()
			return nil, err
		}
		switch how {
		case notFound:
			fs.skipped = append(fs.skipped, filepath.Base(path))
			continue
		case fittedOnBox:
			fs.boxFits++
		}
		fs.fits = append(fs.fits, fitted{img: img, face: f})
	}
	if len(fs.fits) == 0 {
		return nil, fmt.Errorf("calibration photos: the face pipeline found no face in %d photos (%s)", len(files), sel)
	}
	return fs, nil
}

type found int

const (
	notFound found = iota
	detected
	fittedOnBox
)

const (
	// minPresence is the mesh network's face probability a fit on the
	// central box needs (as estimators/attributes asks).
	minPresence = 0.5
)

// locate returns the photo and its face; nothing is returned to close when
// how is notFound.
func locate(ctx context.Context, p *face.Pipeline, path string) (f face.Face, img gocv.Mat, how found, err error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return f, img, notFound, fmt.Errorf("calibration photo: %w", err)
	}
	img, err = gocv.IMDecode(raw, gocv.IMReadColor)
	if err != nil || img.Empty() {
		img.Close()
		return f, gocv.Mat{}, notFound, nil // undecodable: skipped like a photo without a face
	}
	fail := func(err error) (face.Face, gocv.Mat, found, error) {
		img.Close()
		return face.Face{}, gocv.Mat{}, notFound, fmt.Errorf("calibration photo %s: %w", filepath.Base(path), err)
	}
	dets, err := p.Detect(ctx, img)
	if err != nil {
		return fail(err)
	}
	if len(dets) > 0 {
		best := 0
		for i, d := range dets {
			if area(d) > area(dets[best]) {
				best = i
			}
		}
		if f, err = p.Fit(ctx, img, dets[best]); err != nil {
			return fail(err)
		}
		return f, img, detected, nil
	}
	w, h := float64(img.Cols()), float64(img.Rows())
	box := face.Detection{X1: 0.1 * w, Y1: 0.1 * h, X2: 0.9 * w, Y2: 0.9 * h, Score: 1}
	box.Keypoints[0] = face.Point{X: 0.1*w + 0.3*0.8*w, Y: 0.1*h + 0.4*0.8*h}
	box.Keypoints[1] = face.Point{X: 0.1*w + 0.7*0.8*w, Y: 0.1*h + 0.4*0.8*h}
	if f, err = p.Fit(ctx, img, box); err != nil {
		return fail(err)
	}
	if f.Presence >= minPresence && meshInside(f.Mesh, box) {
		return f, img, fittedOnBox, nil
	}
	img.Close()
	return face.Face{}, gocv.Mat{}, notFound, nil
}

// meshInside reports whether the mesh's centre lies in the box grown by
// half: a fit that drifted off the face is refused.
func meshInside(mesh [][3]float64, b face.Detection) bool {
	if len(mesh) == 0 {
		return false
	}
	var cx, cy float64
	for _, p := range mesh {
		cx += p[0] / float64(len(mesh))
		cy += p[1] / float64(len(mesh))
	}
	w, h := b.X2-b.X1, b.Y2-b.Y1
	return cx > b.X1-0.5*w && cx < b.X2+0.5*w && cy > b.Y1-0.5*h && cy < b.Y2+0.5*h
}

func area(d face.Detection) float64 { return (d.X2 - d.X1) * (d.Y2 - d.Y1) }

// Len is the number of faces found.
func (fs *Faces) Len() int { return len(fs.fits) }

// Skipped lists the photos without a face; BoxFits counts the faces the
// detector missed and the mesh found on the central box.
func (fs *Faces) Skipped() []string { return fs.skipped }
func (fs *Faces) BoxFits() int      { return fs.boxFits }

// Close frees the photos.
func (fs *Faces) Close() {
	for _, f := range fs.fits {
		f.img.Close()
	}
	fs.fits = nil
}

// For returns the crops of these faces a model with the given input side
// is fed, as a compiler.CropSource.
func (fs *Faces) For(model string, size int) compiler.CropSource {
	return source{fs: fs, size: size, layout: LayoutOf(model)}
}

// ForModel reads the input side from the model's manifest entry.
func (fs *Faces) ForModel(mi *models.ModelInfo) (compiler.CropSource, error) {
	size, err := SquareInput(mi)
	if err != nil {
		return nil, err
	}
	return fs.For(mi.Name, size), nil
}

// SquareInput is the side of a model's one square [1,N,N,C] input.
func SquareInput(mi *models.ModelInfo) (int, error) {
	if len(mi.Inputs) != 1 || len(mi.Inputs[0].Shape) != 4 || mi.Inputs[0].Shape[1] != mi.Inputs[0].Shape[2] {
		return 0, fmt.Errorf("model %s: input %v is not one square [1,N,N,C] image", mi.Name, mi.Inputs)
	}
	return mi.Inputs[0].Shape[1], nil
}

type source struct {
	fs     *Faces
	size   int
	layout Layout
}

func (s source) Describe() string {
	return fmt.Sprintf("%d %s %dpx face-pipeline crops of %d photos (%s)",
		s.fs.Len(), s.layout, s.size, s.fs.photos, s.fs.sel)
}

func (s source) Crops(ctx context.Context) ([]*image.RGBA, error) {
	out := make([]*image.RGBA, 0, len(s.fs.fits))
	for i := range s.fs.fits {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		c, err := Crop(s.fs.fits[i].img, &s.fs.fits[i].face, s.size, s.layout, 1)
		if err != nil {
			return nil, err
		}
		rgba, err := toRGBA(c)
		c.Close()
		if err != nil {
			return nil, err
		}
		out = append(out, rgba)
	}
	return out, nil
}

// toRGBA copies an 8-bit BGR Mat into an RGBA image.
func toRGBA(m gocv.Mat) (*image.RGBA, error) {
	if m.Type() != gocv.MatTypeCV8UC3 || !m.IsContinuous() {
		return nil, errors.New("crop is not continuous 8-bit BGR")
	}
	pix, err := m.DataPtrUint8()
	if err != nil {
		return nil, fmt.Errorf("crop bytes: %w", err)
	}
	w, h := m.Cols(), m.Rows()
	out := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := 0; i < w*h; i++ {
		out.Pix[4*i], out.Pix[4*i+1], out.Pix[4*i+2], out.Pix[4*i+3] = pix[3*i+2], pix[3*i+1], pix[3*i], 255
	}
	return out, nil
}

// Pipeline opens the face pipeline over the built models in dir (the
// runtime verifies them against the manifest). Close the runtime when done.
func Pipeline(manifest *models.Manifest, dir string) (*face.Pipeline, *models.Runtime, error) {
	rt, err := models.NewRuntime(manifest, models.Options{Dir: dir, Delegate: models.DelegateXNNPACK, Threads: 1, Pool: 1}, nil)
	if err != nil {
		return nil, nil, err
	}
	p, err := face.New(rt, face.FittingConfig(""))
	if err != nil {
		rt.Close()
		return nil, nil, fmt.Errorf("%w (run `make models`)", err)
	}
	return p, rt, nil
}
