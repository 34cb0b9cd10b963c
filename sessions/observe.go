package sessions

import (
	"context"
	"fmt"
	"image"
	"math"

	"gocv.io/x/gocv"

	"imageapid/estimators"
	"imageapid/estimators/attributes"
	"imageapid/estimators/body"
	"imageapid/estimators/face"
	"imageapid/estimators/facetemplate"
	"imageapid/models"
)

// Observation is what one frame shows: the figures a session decides on.
// It holds no pixels and no template bytes beyond the embedding used for
// the continuity check.
type Observation struct {
	// Width and Height are the frame's size in pixels.
	Width, Height int
	// Faces counts the faces the detector found.
	Faces int
	// Face is the largest face, nil when there is none.
	Face *FaceFigures
}

// FaceFigures are the measurements of one face in one frame.
type FaceFigures struct {
	// Box is the detector box, normalized to the frame [x1, y1, x2, y2].
	Box [4]float64
	// WidthPx is the box width in pixels.
	WidthPx float64
	// Yaw, Pitch and Roll are the fitter's angles in degrees (yaw positive
	// when the person turns to their own left, pitch positive looking up).
	Yaw, Pitch, Roll float64
	// EyeOpen is the mean eye aperture (lid distance over eye width) of both eyes.
	EyeOpen float64
	// MouthWidth is the mouth corner distance over the inter-ocular distance.
	MouthWidth float64
	// Sharpness is the variance of the Laplacian of the face, scaled to a
	// fixed size; Brightness the mean grey level of the face (0..255).
	Sharpness, Brightness float64
	// Presence is the mesh network's probability of a face.
	Presence float64
	// Landmarks are a few mesh points in pixels (eye corners, nose, mouth
	// corners), to tell a frozen picture from a living face.
	Landmarks [6]face.Point
	// Passive is the session head's probability of a real face; NaN when
	// not measured.
	Passive float64
	// Device is the COCO class of a phone, screen or book around the face
	// (-1 when none was found or the check did not run on this frame).
	Device      int
	DeviceScore float64
	// DeviceChecked says the device and bezel checks ran on this frame;
	// Bezel that long straight edges enclose the face.
	DeviceChecked bool
	Bezel         bool
	// Embedding is the face's unit-length template vector, when computed.
	Embedding []float32
	// Depth are the mesh points the depth check compares (depth.go) and
	// IOD the distance between the eye centres, in pixels.
	Depth []face.Point
	IOD   float64
}

// Analyzer turns frames into Observations with the daemon's models. It is
// safe for concurrent use.
type Analyzer struct {
	faces    *face.Pipeline
	liveness *attributes.LivenessHead
	embedder *facetemplate.Embedder
	cal      *facetemplate.Calibration
	devices  *body.ObjectDetector
}

// NewAnalyzer builds an analyzer from the shared face pipeline and the
// networks it needs.
func NewAnalyzer(faces *face.Pipeline, liveness *attributes.LivenessHead, embedder *facetemplate.Embedder,
	cal *facetemplate.Calibration, devices *body.ObjectDetector) *Analyzer {
	return &Analyzer{faces: faces, liveness: liveness, embedder: embedder, cal: cal, devices: devices}
}

// LoadAnalyzer loads what an analyzer needs from the runtime: both
// liveness heads, the named template network (with its calibration table)
// and the COCO object detector; faces is the shared face pipeline.
func LoadAnalyzer(rt *models.Runtime, faces *face.Pipeline, network string, flip bool) (*Analyzer, error) {
	live, err := attributes.NewLivenessHead(rt, attributes.SessionLivenessHead)
	if err != nil {
		return nil, fmt.Errorf("sessions: %w", err)
	}
	emb, err := facetemplate.NewEmbedder(rt, network, flip)
	if err != nil {
		return nil, fmt.Errorf("sessions: %w", err)
	}
	cal, err := facetemplate.LoadCalibration(network, flip)
	if err != nil {
		return nil, fmt.Errorf("sessions: %w", err)
	}
	dev, err := body.NewObjectDetector(rt)
	if err != nil {
		return nil, fmt.Errorf("sessions: %w", err)
	}
	return NewAnalyzer(faces, live, emb, cal, dev), nil
}

// Calibration is the template distance table used for verification.
func (a *Analyzer) Calibration() *facetemplate.Calibration { return a.cal }

// What asks the analyzer for the costlier figures of a frame; a device
// counts from DeviceMinScore.
type What struct {
	Passive        bool
	Device         bool
	Embedding      bool
	DeviceMinScore float64
}

// deviceClasses are the COCO objects a face shown to the camera sits on.
var deviceClasses = []int{body.ClassCellPhone, body.ClassTV, body.ClassLaptop, body.ClassBook}

// Observe analyses one BGR frame.
func (a *Analyzer) Observe(ctx context.Context, img gocv.Mat, what What) (Observation, error) {
	obs := Observation{Width: img.Cols(), Height: img.Rows()}
	dets, err := a.faces.Detect(ctx, img)
	if err != nil {
		return obs, fmt.Errorf("observe: %w", err)
	}
	obs.Faces = len(dets)
	if len(dets) == 0 {
		return obs, nil
	}
	f, err := a.faces.Fit(ctx, img, dets[face.Largest(dets)])
	if err != nil {
		return obs, fmt.Errorf("observe: %w", err)
	}
	w, h := float64(obs.Width), float64(obs.Height)
	ff := &FaceFigures{
		Box:      [4]float64{f.X1 / w, f.Y1 / h, f.X2 / w, f.Y2 / h},
		WidthPx:  f.X2 - f.X1,
		Yaw:      f.Yaw,
		Pitch:    f.Pitch,
		Roll:     f.Roll,
		Presence: f.Presence,
		Passive:  math.NaN(),
		Device:   -1,
	}
	meshFigures(ff, f.Mesh)
	ff.Depth, ff.IOD, _ = DepthPoints(f.Mesh)
	ff.Sharpness, ff.Brightness = faceTexture(img, f.Detection)
	if what.Passive && a.liveness != nil {
		loc := attributes.Located{Face: f, Source: attributes.Detected}
		ff.Passive, err = a.passive(ctx, img, &loc)
		if err != nil {
			return obs, fmt.Errorf("observe: passive liveness: %w", err)
		}
	}
	if what.Embedding && a.embedder != nil {
		vec, err := a.embedder.Embed(ctx, img, &f)
		if err != nil {
			return obs, fmt.Errorf("observe: template: %w", err)
		}
		ff.Embedding = unit(vec)
	}
	if what.Device && a.devices != nil {
		objs, err := a.devices.Detect(ctx, img, deviceClasses, what.DeviceMinScore)
		if err != nil {
			return obs, fmt.Errorf("observe: devices: %w", err)
		}
		ff.DeviceChecked = true
		ff.Bezel = bezelAround(img, f.Detection)
		ff.Device, ff.DeviceScore = deviceHolding(objs, f.Detection)
	}
	obs.Face = ff
	return obs, nil
}

// passive is the session head's probability that the located face is real.
func (a *Analyzer) passive(ctx context.Context, img gocv.Mat, loc *attributes.Located) (float64, error) {
	f, err := a.liveness.Extractor().Compute(ctx, img, loc)
	if err != nil {
		return 0, err
	}
	return a.liveness.Probability(ctx, f)
}

// Embed returns the unit template vector of the largest face in img, for a
// session's reference image.
func (a *Analyzer) Embed(ctx context.Context, img gocv.Mat) ([]float32, error) {
	if a.embedder == nil {
		return nil, fmt.Errorf("no template network")
	}
	vec, err := facetemplate.LargestFace(ctx, a.faces, a.embedder, img)
	if err != nil {
		return nil, err
	}
	return unit(vec), nil
}

// ModelID is the template model id references must carry.
func (a *Analyzer) ModelID() uint16 {
	if a.embedder == nil {
		return 0
	}
	return a.embedder.ModelID()
}

// deviceHolding returns the class and score of the likeliest device among
// objs that holds the face d, or -1 and 0.
func deviceHolding(objs []body.Object, d face.Detection) (int, float64) {
	class, score := -1, 0.0
	for _, o := range objs {
		if o.Score > score && holdsFace(o, d) {
			class, score = o.Class, o.Score
		}
	}
	return class, score
}

// DeviceAround returns, for the largest face of a photo, the likeliest
// phone, screen or book holding it (class -1 when none scores minScore),
// and whether straight edges frame it; found is false without a face. The
// session's thresholds are set from these figures on corpus photos
// (fitting/cmd/devicecal).
func (a *Analyzer) DeviceAround(ctx context.Context, img gocv.Mat, minScore float64) (class int, score float64, bezel, found bool, err error) {
	dets, err := a.faces.Detect(ctx, img)
	if err != nil || len(dets) == 0 {
		return -1, 0, false, false, err
	}
	d := dets[face.Largest(dets)]
	objs, err := a.devices.Detect(ctx, img, deviceClasses, minScore)
	if err != nil {
		return -1, 0, false, true, fmt.Errorf("devices: %w", err)
	}
	class, score = deviceHolding(objs, d)
	return class, score, bezelAround(img, d), true, nil
}

// holdsFace reports whether an object box holds most of the face: the face
// centre inside it and at least half the face area overlapping.
func holdsFace(o body.Object, d face.Detection) bool {
	cx, cy := (d.X1+d.X2)/2, (d.Y1+d.Y2)/2
	if cx < o.X1 || cx > o.X2 || cy < o.Y1 || cy > o.Y2 {
		return false
	}
	ix := math.Min(o.X2, d.X2) - math.Max(o.X1, d.X1)
	iy := math.Min(o.Y2, d.Y2) - math.Max(o.Y1, d.Y1)
	if ix <= 0 || iy <= 0 {
		return false
	}
	area := (d.X2 - d.X1) * (d.Y2 - d.Y1)
	// A face much smaller than the object may sit on it; an object that is
	// hardly bigger than the face is the face (or the head) itself.
	objArea := (o.X2 - o.X1) * (o.Y2 - o.Y1)
	return ix*iy >= 0.5*area && objArea >= 1.5*area
}

// Mesh indices (MediaPipe's 468-point face mesh) of the points the
// figures read: for each eye its two corners and three upper and lower
// lid points; the mouth corners; the nose tip.
var (
	eyeCorners = [2][2]int{{33, 133}, {362, 263}}
	eyeLids    = [2][3][2]int{
		{{160, 144}, {159, 145}, {158, 153}},
		{{385, 380}, {386, 374}, {387, 373}},
	}
	mouthCorners = [2]int{61, 291}
	noseTip      = 1
)

func meshFigures(ff *FaceFigures, mesh [][3]float64) {
	if len(mesh) < 468 {
		return
	}
	pt := func(i int) face.Point { return face.Point{X: mesh[i][0], Y: mesh[i][1]} }
	dist := func(a, b face.Point) float64 { return math.Hypot(a.X-b.X, a.Y-b.Y) }
	var open float64
	for e := 0; e < 2; e++ {
		width := dist(pt(eyeCorners[e][0]), pt(eyeCorners[e][1]))
		var lids float64
		for _, l := range eyeLids[e] {
			lids += dist(pt(l[0]), pt(l[1]))
		}
		if width > 0 {
			open += lids / 3 / width
		}
	}
	ff.EyeOpen = open / 2
	if iod := eyeDistance(mesh); iod > 0 {
		ff.MouthWidth = dist(pt(mouthCorners[0]), pt(mouthCorners[1])) / iod
	}
	for i, k := range [6]int{eyeCorners[0][0], eyeCorners[0][1], eyeCorners[1][0], eyeCorners[1][1], mouthCorners[0], noseTip} {
		ff.Landmarks[i] = pt(k)
	}
}

// textureSide is the face crop width sharpness is measured at, so that the
// figure does not grow with the face's size in pixels.
const textureSide = 96

// faceTexture returns the Laplacian variance and mean grey level of the
// face box, resized to textureSide.
func faceTexture(img gocv.Mat, d face.Detection) (sharpness, brightness float64) {
	r := image.Rect(int(d.X1), int(d.Y1), int(math.Ceil(d.X2)), int(math.Ceil(d.Y2))).Intersect(image.Rect(0, 0, img.Cols(), img.Rows()))
	if r.Dx() < 4 || r.Dy() < 4 {
		return 0, 0
	}
	roi := img.Region(r)
	defer roi.Close()
	grey := gocv.NewMat()
	defer grey.Close()
	gocv.CvtColor(roi, &grey, gocv.ColorBGRToGray)
	small := gocv.NewMat()
	defer small.Close()
	gocv.Resize(grey, &small, image.Pt(textureSide, textureSide*r.Dy()/r.Dx()), 0, 0, gocv.InterpolationArea)
	lap := gocv.NewMat()
	defer lap.Close()
	gocv.Laplacian(small, &lap, gocv.MatTypeCV64F, 1, 1, 0, gocv.BorderDefault)
	mean, std := gocv.NewMat(), gocv.NewMat()
	defer mean.Close()
	defer std.Close()
	gocv.MeanStdDev(lap, &mean, &std)
	s := std.GetDoubleAt(0, 0)
	return s * s, small.Mean().Val1
}

func unit(v []float32) []float32 {
	var n float64
	for _, x := range v {
		n += float64(x) * float64(x)
	}
	n = math.Sqrt(n)
	out := make([]float32, len(v))
	if n == 0 {
		return out
	}
	for i, x := range v {
		out[i] = float32(float64(x) / n)
	}
	return out
}

// bestShotSide is the longest side of a best-shot crop, in pixels.
const bestShotSide = 256

// faceCrop returns a JPEG of the face box (normalized to the frame) with a
// quarter of its size as margin on every side, at most bestShotSide wide.
func faceCrop(img gocv.Mat, box [4]float64) ([]byte, error) {
	w, h := float64(img.Cols()), float64(img.Rows())
	mx, my := (box[2]-box[0])*w/4, (box[3]-box[1])*h/4
	r := image.Rect(int(box[0]*w-mx), int(box[1]*h-my), int(math.Ceil(box[2]*w+mx)), int(math.Ceil(box[3]*h+my))).
		Intersect(image.Rect(0, 0, img.Cols(), img.Rows()))
	if r.Dx() < 8 || r.Dy() < 8 {
		return nil, fmt.Errorf("face crop %v is too small", r)
	}
	roi := img.Region(r)
	defer roi.Close()
	k := math.Min(1, float64(bestShotSide)/float64(max(r.Dx(), r.Dy())))
	small := gocv.NewMat()
	defer small.Close()
	gocv.Resize(roi, &small, image.Pt(max(1, int(float64(r.Dx())*k)), max(1, int(float64(r.Dy())*k))), 0, 0, gocv.InterpolationArea)
	return estimators.EncodeJPEG(small, 90)
}

// eyeDistance is the distance between the eye centres (the middles of each
// eye's corners) of a 468-point mesh.
func eyeDistance(mesh [][3]float64) float64 {
	var c [2][2]float64
	for e, corners := range eyeCorners {
		a, b := mesh[corners[0]], mesh[corners[1]]
		c[e] = [2]float64{(a[0] + b[0]) / 2, (a[1] + b[1]) / 2}
	}
	return math.Hypot(c[1][0]-c[0][0], c[1][1]-c[0][1])
}
