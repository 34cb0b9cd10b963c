package face

// The close-up fallback.
//
// BlazeFace (both variants) expects a face with context around it. When the
// face fills the frame or is cut by the border (LFW-style 250x250 crops,
// 150x150 portraits, 60x60 thumbnails, masked faces cropped to the head) it
// scores far under the threshold or finds nothing, and the border pass (a
// black margin of a quarter side, the configured detector) rescues few of
// them: with only the regular passes, 9% of ../shared/corpus (one subject
// per image, most as tight crops) came back without a face.
//
// So when every regular pass found nothing, closeUp tries, in order, until
// one step finds a face:
//
//  1. the short-range model (trained on selfie-distance faces that fill much
//     of its 128 px input) on the image inside a grey margin, then the
//     configured detector inside a wider black margin: a candidate is kept
//     when the mesh network, run on its region as Fit would, scores it a
//     face (Face.Presence);
//  2. a vote over those two and two more padded passes (short range in
//     black, the configured detector with the image's edges replicated):
//     kept when all four put their best box on the same face.
//     This finds masked faces, which the mesh does not score as faces;
//  3. the mesh network alone on a square around the image centre: its
//     face presence on that crop and on the region its own mesh then gives,
//     turned into a Detection (box from the mesh extent, keypoints from mesh
//     points);
//  4. the same on a square over the upper part of the image inside a grey
//     margin (meshOnPaddedHead): heads cut at the brows and the chin.
//
// In step 1 a candidate the mesh scores under the threshold gets a second
// chance when its box is a close-up's and the mesh, run again on the
// region of its own first mesh, scores it a face (confirmCloseUpBox).
// Steps 4 and that second chance find 18 of the 148 corpus images the
// other steps missed (most of them masked faces cut at the brows).
//
// Detector passes on padded images also fire on fur, foliage, paintings and
// textures: on about 550 crops of no-face photos (the fixtures' cat and
// coffee cup and other library sample images) the padded passes alone fired
// on a third of them; each step above needs a second opinion (the mesh, or
// other passes) and none of the steps fired on any of those crops. The
// thresholds were set on ../shared/corpus and those crops.
//
// Nothing here runs when a regular pass found a face, so frames and photos
// with a detected face pay nothing for it.

import (
	"context"
	"fmt"
	"image"
	"image/color"
	"math"

	"gocv.io/x/gocv"
)

// paddedPass is one detector run over the image inside a margin.
type paddedPass struct {
	short     bool       // the short-range model instead of the configured detector
	margin    float64    // on each side, a fraction of the image's longer side
	fill      color.RGBA // the margin's colour, unless replicate
	replicate bool       // the margin repeats the image's edge pixels
}

// closeUpPasses are the padded detector passes, in the order they run; the
// candidates of the first confirmPasses are checked with the mesh.
func closeUpPasses() []paddedPass {
	grey := color.RGBA{R: 127, G: 127, B: 127}
	return []paddedPass{
		{short: true, margin: 0.25, fill: grey},
		{short: false, margin: 0.5},
		{short: true, margin: 0.25},
		{short: false, margin: 1, replicate: true},
	}
}

const (
	// confirmPasses is how many of the passes have their candidates checked
	// by the mesh (the later ones only vote).
	confirmPasses = 2
	// closeUpCandidates caps the candidates of a pass the mesh checks.
	closeUpCandidates = 2
	// confirmPresence is the mesh presence that confirms a detector candidate.
	confirmPresence = 0.5
	// voteScore and voteIoU: a pass votes for the best candidate of all
	// passes when its own best detection scores voteScore and overlaps it by
	// voteIoU. votesNeeded of the passes must agree. This is what finds
	// masked faces, which the mesh does not score as faces; on the no-face
	// crops three of the four passes agreed on a texture 4 times in 549,
	// all four never.
	voteScore   = 0.4
	voteIoU     = 0.5
	votesNeeded = 4
	// centreSide is the side of the mesh's central square, in longer sides
	// of the image: a face filling the frame is about 0.8 of it, and the mesh
	// wants 1.5 face widths.
	centreSide = 1.25
	// centrePresence is the presence both central mesh runs need to make a
	// face without any detector: higher than confirmPresence, as nothing
	// else vouches for it.
	centrePresence = 0.9
	// tracePresence, closeUpWidth and refinedPresence: a candidate whose
	// detection region the mesh scores under confirmPresence is still kept
	// when that score is at least tracePresence, its box is at least
	// closeUpWidth of the image wide near the centre, and the mesh on its
	// own region scores refinedPresence. On the corpus's missed faces
	// (mostly masked, cut at the brows) this finds 11 of 148, on the
	// no-face crops none of 598.
	tracePresence   = 0.1
	closeUpWidth    = 0.6
	refinedPresence = 0.3
	// headCentre, headSide and headPresence place meshOnPaddedHead's
	// square: centred at headCentre of the image's height, headSide longer
	// sides wide, kept at headPresence on both runs (found 15 of the 148,
	// none of the 598; centred lower or wider it found fewer).
	headCentre   = 0.3
	headSide     = 1.25
	headPresence = 0.5
)

func (p *Pipeline) wantCloseUp(found []Detection) bool {
	switch p.cfg.CloseUp {
	case "off":
		return false
	case "always":
		return true
	}
	return len(found) == 0
}

// closeUp runs the close-up passes (see the top of this file) and returns
// the faces the first successful step finds.
func (p *Pipeline) closeUp(ctx context.Context, img gocv.Mat) ([]Detection, error) {
	var best []Detection // each pass's most confident detection, if any
	for i, pass := range closeUpPasses() {
		det := p.detector
		if pass.short {
			det = p.shortRange
		}
		cands, err := paddedDetect(ctx, img, det, pass, math.Min(voteScore, p.cfg.MinScore))
		if err != nil {
			return nil, fmt.Errorf("close-up pass: %w", err)
		}
		cands = dropDegenerate(weightedNMS(cands, nmsThreshold))
		if len(cands) > 0 {
			best = append(best, cands[0])
		}
		if i >= confirmPasses {
			continue
		}
		var out []Detection
		for k, d := range cands {
			if k == closeUpCandidates || d.Score < p.cfg.MinScore {
				break
			}
			mesh, presence, err := p.mesh.run(ctx, img, roiFromDetection(d))
			if err != nil {
				return nil, fmt.Errorf("close-up check: %w", err)
			}
			if presence >= confirmPresence {
				out = append(out, d)
				continue
			}
			ok, err := p.confirmCloseUpBox(ctx, img, d, mesh, presence)
			if err != nil {
				return nil, err
			}
			if ok {
				out = append(out, d)
			}
		}
		if len(out) > 0 {
			return out, nil
		}
	}
	if d, ok := vote(best, p.cfg.MinScore); ok {
		return []Detection{d}, nil
	}
	d, ok, err := p.meshOnCentre(ctx, img)
	if err != nil {
		return nil, err
	}
	if !ok {
		if d, ok, err = p.meshOnPaddedHead(ctx, img); err != nil || !ok {
			return nil, err
		}
	}
	return []Detection{d}, nil
}

// confirmCloseUpBox is the second chance of a detector candidate the mesh
// did not score a face on its detection region (masked faces cropped from
// the brows to the chin mostly): it is kept when its box is a close-up's
// (see closeUpBox), the mesh saw at least a trace of a face there and the
// mesh run again on the region of its own first mesh scores it a face.
func (p *Pipeline) confirmCloseUpBox(ctx context.Context, img gocv.Mat, d Detection, mesh [][3]float64, presence float64) (bool, error) {
	if presence < tracePresence || !closeUpBox(d, img.Cols(), img.Rows()) {
		return false, nil
	}
	r := roiFromMesh(mesh)
	if !(r.side > 0) || math.IsNaN(r.cx+r.cy+r.side+r.angle) {
		return false, nil
	}
	_, presence, err := p.mesh.run(ctx, img, r)
	if err != nil {
		return false, fmt.Errorf("close-up check: %w", err)
	}
	return presence >= refinedPresence, nil
}

// closeUpBox says whether a detection is what a face filling the frame
// gives: a box at least closeUpWidth of the image wide, its centre near
// the image's, the eyes in the subject's order.
func closeUpBox(d Detection, w, h int) bool {
	W, H := float64(w), float64(h)
	cx, cy := (d.X1+d.X2)/2/W, (d.Y1+d.Y2)/2/H
	return (d.X2-d.X1)/W >= closeUpWidth && math.Abs(cx-0.5) <= 0.2 && math.Abs(cy-0.5) <= 0.25 &&
		d.Keypoints[0].X < d.Keypoints[1].X
}

// vote returns the most confident of the passes' best detections when it
// scores minScore and votesNeeded passes agree with it (itself included).
func vote(best []Detection, minScore float64) (Detection, bool) {
	if len(best) == 0 {
		return Detection{}, false
	}
	top := best[0]
	for _, d := range best[1:] {
		if d.Score > top.Score {
			top = d
		}
	}
	if top.Score < minScore {
		return Detection{}, false
	}
	votes := 0
	for _, d := range best {
		if d.Score >= voteScore && iou(d, top) >= voteIoU {
			votes++
		}
	}
	return top, votes >= votesNeeded
}

// paddedDetect runs det on img inside the pass's margin and returns the
// detections in img's pixels. Images larger than twice the detector input
// are shrunk first: the detector sees no more than its input, and the
// padded copy stays small.
func paddedDetect(ctx context.Context, img gocv.Mat, det *blazeFace, pass paddedPass, minScore float64) ([]Detection, error) {
	src, scale := img, 1.0
	if limit := 2 * det.size; max(img.Cols(), img.Rows()) > limit {
		scale = float64(limit) / float64(max(img.Cols(), img.Rows()))
		small := gocv.NewMat()
		defer small.Close()
		w := max(1, int(math.Round(float64(img.Cols())*scale)))
		h := max(1, int(math.Round(float64(img.Rows())*scale)))
		gocv.Resize(img, &small, image.Pt(w, h), 0, 0, gocv.InterpolationArea)
		src = small
		scale = float64(w) / float64(img.Cols())
	}
	m := int(math.Round(pass.margin * float64(max(src.Cols(), src.Rows()))))
	padded := gocv.NewMat()
	defer padded.Close()
	border := gocv.BorderConstant
	if pass.replicate {
		border = gocv.BorderReplicate
	}
	gocv.CopyMakeBorder(src, &padded, m, m, m, m, border, pass.fill)
	if padded.Empty() {
		return nil, fmt.Errorf("padding a %dx%d image failed", src.Cols(), src.Rows())
	}
	dets, err := det.detectRegion(ctx, padded, image.Rect(0, 0, padded.Cols(), padded.Rows()), minScore)
	if err != nil {
		return nil, err
	}
	off := float64(m)
	edge := func(v float64) float64 { return (v - off) / scale }
	centre := func(v float64) float64 { return (v+0.5-off)/scale - 0.5 }
	for i := range dets {
		d := &dets[i]
		d.X1, d.Y1, d.X2, d.Y2 = edge(d.X1), edge(d.Y1), edge(d.X2), edge(d.Y2)
		for k := range d.Keypoints {
			d.Keypoints[k] = Point{centre(d.Keypoints[k].X), centre(d.Keypoints[k].Y)}
		}
	}
	return dets, nil
}

// meshOnCentre fits the mesh on a square around the image centre, then on
// the region that mesh gives, and makes a detection of the second mesh when
// both runs score a face.
func (p *Pipeline) meshOnCentre(ctx context.Context, img gocv.Mat) (Detection, bool, error) {
	w, h := float64(img.Cols()), float64(img.Rows())
	return p.meshOnSquare(ctx, img, roi{cx: w / 2, cy: h / 2, side: centreSide * math.Max(w, h)}, centrePresence, 0, w, h)
}

// meshOnPaddedHead is meshOnCentre on a square over the upper part of the
// image inside a grey margin (a head cut at the brows and the chin, the
// face's centre high in the frame: the replicated border meshOnCentre
// sees there smears hair and mask over the missing face).
func (p *Pipeline) meshOnPaddedHead(ctx context.Context, img gocv.Mat) (Detection, bool, error) {
	w, h := float64(img.Cols()), float64(img.Rows())
	m := int(math.Ceil(headSide * math.Max(w, h) / 2))
	padded := gocv.NewMat()
	defer padded.Close()
	gocv.CopyMakeBorder(img, &padded, m, m, m, m, gocv.BorderConstant, color.RGBA{R: 127, G: 127, B: 127})
	if padded.Empty() {
		return Detection{}, false, fmt.Errorf("padding a %dx%d image failed", img.Cols(), img.Rows())
	}
	off := float64(m)
	r := roi{cx: w/2 + off, cy: headCentre*h + off, side: headSide * math.Max(w, h)}
	return p.meshOnSquare(ctx, padded, r, headPresence, off, w, h)
}

// meshOnSquare fits the mesh on r of img, then on the region that mesh
// gives, and makes a detection of the second mesh when both runs score
// minPresence and its centre lies in the w x h image; img is that image
// inside a margin of off pixels.
func (p *Pipeline) meshOnSquare(ctx context.Context, img gocv.Mat, r roi, minPresence, off, w, h float64) (Detection, bool, error) {
	mesh, presence, err := p.mesh.run(ctx, img, r)
	if err != nil {
		return Detection{}, false, fmt.Errorf("close-up mesh: %w", err)
	}
	if presence < minPresence {
		return Detection{}, false, nil
	}
	r2 := roiFromMesh(mesh)
	if !(r2.side > 0) || math.IsNaN(r2.cx+r2.cy+r2.side+r2.angle) {
		return Detection{}, false, nil
	}
	mesh, presence, err = p.mesh.run(ctx, img, r2)
	if err != nil {
		return Detection{}, false, fmt.Errorf("close-up mesh: %w", err)
	}
	if presence < minPresence {
		return Detection{}, false, nil
	}
	for i := range mesh {
		mesh[i][0] -= off
		mesh[i][1] -= off
	}
	d := detectionFromMesh(mesh, presence)
	if cx, cy := (d.X1+d.X2)/2, (d.Y1+d.Y2)/2; cx < 0 || cx > w || cy < 0 || cy > h {
		return Detection{}, false, nil
	}
	return d, true, nil
}

// detectionFromMesh makes a detector-style detection of a mesh in image
// pixel-edge coordinates (as mesh.run returns it): the box is the mesh's
// extent, the keypoints BlazeFace's six taken from mesh points (eye centres
// from the eye corners, nose tip, mouth centre from the inner lips, the
// cheek contour at the ears).
func detectionFromMesh(mesh [][3]float64, score float64) Detection {
	d := Detection{X1: math.Inf(1), Y1: math.Inf(1), X2: math.Inf(-1), Y2: math.Inf(-1), Score: score}
	for _, q := range mesh {
		d.X1, d.X2 = math.Min(d.X1, q[0]), math.Max(d.X2, q[0])
		d.Y1, d.Y2 = math.Min(d.Y1, q[1]), math.Max(d.Y2, q[1])
	}
	mid := func(idx ...int) Point {
		var s Point
		for _, i := range idx {
			s.X += mesh[i][0] / float64(len(idx))
			s.Y += mesh[i][1] / float64(len(idx))
		}
		return Point{s.X - 0.5, s.Y - 0.5} // pixel-centre coordinates
	}
	d.Keypoints = [6]Point{mid(33, 133), mid(263, 362), mid(1), mid(13, 14), mid(234), mid(454)}
	return d
}
