package attributes

import (
	"context"
	"fmt"
	"math"
	"strings"

	"gocv.io/x/gocv"

	"imageapid/estimators/face"
	"imageapid/models"
)

// Feature parts a head can read; a head's feature set joins parts with "+"
// ("mobileface+geometry").
const (
	// PartEmbedding is the L2-normalized MobileFace embedding (256 values) of
	// the aligned face: a fast identity network whose embedding also carries
	// age, gender and mask.
	PartEmbedding = "mobileface"
	// PartGeometry is the aligned mesh geometry (GeometryDim values).
	PartGeometry = "geometry"
	// PartTexture is the colour texture of the aligned face (TextureDim values).
	PartTexture = "texture"
	// PartEmotionNet is the log-probabilities of the compiled FER emotion
	// network, in Emotions order (7 values).
	PartEmotionNet = "emotionnet"
	// PartSpoofNets is the logits of the compiled anti-spoofing and liveness
	// networks (2 values).
	PartSpoofNets = "spoofnets"
	// PartFaceRes is the HSE FaceRes network's own age and gender estimates:
	// the logit of its male probability, the mean of its age distribution
	// and that mean's log(1+age) (3 values).
	PartFaceRes = "faceres"
	// PartFaceResDesc is the FaceRes descriptor, L2-normalized (1024 values).
	PartFaceResDesc = "faceresdesc"
	// PartFaceAPI is face-api's AgeGenderNet's own estimates: the logit of
	// its female probability, its age and log(1+age) (3 values).
	PartFaceAPI = "faceapi"
)

// Feature sets used by the heads.
const (
	FeatEmbedding = PartEmbedding
	FeatTexture   = PartTexture
)

// PartDims are the sizes of the parts.
var PartDims = map[string]int{
	PartEmbedding: 256, PartGeometry: 2 * len(geometryPoints), PartTexture: TextureDim, PartEmotionNet: 7, PartSpoofNets: 2,
	PartFaceRes: 3, PartFaceResDesc: 1024, PartFaceAPI: 3,
}

// networkSpecs say how each compiled network behind the parts is fed. The
// crops and pixel scalings were chosen on the corpus's held-out split
// (`heads compare`): FaceRes reads BGR, 0..255 (its own age estimate errs by
// 7.1 years on held-out UTKFace that way, 9.0 fed RGB; -1..1 gives 26) on a
// crop a little wider than the ArcFace one; the FER emotion network reads
// the ArcFace crop in gray, -1..1. face-api's AgeGenderNet reads RGB 0..255
// on its own library's crop (the landmarks' box, here padded by 0.1 where
// face-api pads by 0.2): on held-out UTKFace its age errs by 3.93 years and
// its gender is right 0.865 of the time that way, 9.1 and 0.829 on the
// ArcFace crop; averaging it with its mirror image gives 3.78 and 0.868.
var networkSpecs = map[string]NetworkSpec{
	"mobileface":         {Model: "mobileface", Lo: 0, Hi: 255},
	"emotion":            {Model: "emotion", Gray: true, Lo: -1, Hi: 1},
	"antispoof":          {Model: "antispoof", Lo: 0, Hi: 1},
	"liveness":           {Model: "liveness", Lo: 0, Hi: 1},
	"faceres":            {Model: "faceres", BGR: true, Lo: 0, Hi: 255, Zoom: 0.9},
	"faceapi_age_gender": {Model: "faceapi_age_gender", Lo: 0, Hi: 255, Box: 0.1, Mirror: true},
}

// PartNetworks names the compiled networks each part runs (parts computed
// in Go need none).
var PartNetworks = map[string][]string{
	PartEmbedding: {"mobileface"}, PartEmotionNet: {"emotion"}, PartSpoofNets: {"antispoof", "liveness"},
	PartFaceRes: {"faceres"}, PartFaceResDesc: {"faceres"}, PartFaceAPI: {"faceapi_age_gender"},
}

// geometryPoints are the mesh points whose aligned positions describe the
// expression: lips (outer and inner contour), both eye contours, both brows,
// nose tip, chin, cheeks and forehead.
var geometryPoints = []int{
	61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185,
	78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 415, 310, 311, 312, 13, 82, 81, 80, 191,
	33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246,
	263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466,
	70, 63, 105, 66, 107, 55, 65, 52, 53, 46,
	300, 293, 334, 296, 336, 285, 295, 282, 283, 276,
	1, 152, 234, 454, 10,
}

// GeometryDim is the number of geometry features.
var GeometryDim = 2 * len(geometryPoints)

// Geometry returns the chosen mesh points in the face's aligned frame
// (ArcFace layout, unit = the crop side), or nil when the face has no mesh.
func Geometry(f *face.Face) []float32 {
	if len(f.Mesh) < 468 {
		return nil
	}
	m := face.AlignmentMatrix(f, 1)
	out := make([]float32, 0, GeometryDim)
	for _, i := range geometryPoints {
		x, y := f.Mesh[i][0], f.Mesh[i][1]
		out = append(out,
			float32(m[0][0]*x+m[0][1]*y+m[0][2]),
			float32(m[1][0]*x+m[1][1]*y+m[1][2]))
	}
	return out
}

// humanEmotions is the compiled emotion network's output order.
var humanEmotions = []string{"ANGRY", "DISGUSTED", "SCARED", "HAPPY", "SAD", "SURPRISED", "NEUTRAL"}

// Extractor computes the feature parts of located faces.
type Extractor struct {
	nets map[string]*Network
}

// NewExtractor loads the networks behind the parts of the given feature
// sets ("mobileface+geometry"); with none, every part's.
func NewExtractor(rt *models.Runtime, sets ...string) (*Extractor, error) {
	need := map[string]bool{}
	if len(sets) == 0 {
		for p := range PartDims {
			need[p] = true
		}
	}
	for _, set := range sets {
		for _, p := range strings.Split(set, "+") {
			need[p] = true
		}
	}
	x := &Extractor{nets: map[string]*Network{}}
	for part := range need {
		for _, name := range PartNetworks[part] {
			if x.nets[name] != nil {
				continue
			}
			n, err := NewNetwork(rt, networkSpecs[name])
			if err != nil {
				return nil, err
			}
			x.nets[name] = n
		}
	}
	return x, nil
}

// ForHeads returns an extractor for the runners' feature sets.
func ForHeads(rt *models.Runtime, runners ...*Runner) (*Extractor, error) {
	var sets []string
	for _, r := range runners {
		sets = append(sets, r.Head.Features)
	}
	return NewExtractor(rt, sets...)
}

// OutputCache returns what run computes on face f, from a cache that keeps
// such outputs across samples of the same image when it has them; name
// says what run computes (the network and how its input is made).
type OutputCache func(ctx context.Context, f *face.Face, name string, run func() ([][]float32, error)) ([][]float32, error)

// Features are one face's feature parts, computed on first use.
type Features struct {
	// Parts holds the parts computed so far; a nil part is unavailable
	// (geometry without a mesh).
	Parts map[string][]float32

	x     *Extractor
	image func() (gocv.Mat, error)
	f     *face.Face
	runs  map[string][][]float32
	cache OutputCache
}

// CacheIn makes the features look their network outputs and texture up in
// cache (nil: compute them).
func (f *Features) CacheIn(cache OutputCache) { f.cache = cache }

// cached runs compute through the features' cache, if any.
func (f *Features) cached(ctx context.Context, name string, compute func() ([][]float32, error)) ([][]float32, error) {
	if f.cache == nil {
		return compute()
	}
	return f.cache(ctx, f.f, "attributes/"+name, compute)
}

// Compute prepares the features of a located face; parts are computed when
// first asked for, on img, which must outlive the Features.
func (x *Extractor) Compute(ctx context.Context, img gocv.Mat, l *Located) (*Features, error) {
	return x.ComputeOn(ctx, func() (gocv.Mat, error) { return img, nil }, l)
}

// ComputeOn is Compute on an image got from image when a part first needs
// pixels (a part served by the features' cache needs none).
func (x *Extractor) ComputeOn(_ context.Context, image func() (gocv.Mat, error), l *Located) (*Features, error) {
	return &Features{Parts: map[string][]float32{}, x: x, image: image, f: &l.Face, runs: map[string][][]float32{}}, nil
}

// Use lets the features borrow any network x has and theirs lacks, so that
// services with different extractors share one face's features (and the
// network runs behind them) within a sample.
func (f *Features) Use(x *Extractor) {
	if f.x == nil || x == nil || f.x == x {
		return
	}
	merged := &Extractor{nets: map[string]*Network{}}
	for name, n := range x.nets {
		merged.nets[name] = n
	}
	for name, n := range f.x.nets {
		merged.nets[name] = n
	}
	f.x = merged
}

// run returns the outputs of one network on the face, running it once.
func (f *Features) run(ctx context.Context, name string) ([][]float32, error) {
	if out, ok := f.runs[name]; ok {
		return out, nil
	}
	n := f.x.nets[name]
	if n == nil {
		return nil, fmt.Errorf("the extractor was built without the %s network", name)
	}
	out, err := f.cached(ctx, name, func() ([][]float32, error) {
		img, err := f.image()
		if err != nil {
			return nil, err
		}
		return n.Run(ctx, img, f.f)
	})
	if err != nil {
		return nil, err
	}
	f.runs[name] = out
	return out, nil
}

// Part returns one part (nil when unavailable).
func (f *Features) Part(ctx context.Context, name string) ([]float32, error) {
	if v, ok := f.Parts[name]; ok {
		return v, nil
	}
	if f.x == nil {
		return nil, fmt.Errorf("feature part %s was not extracted", name)
	}
	var v []float32
	var err error
	var out [][]float32
	switch name {
	case PartEmbedding:
		if out, err = f.run(ctx, "mobileface"); err == nil {
			v = l2normalized(out[0])
		}
	case PartGeometry:
		v = Geometry(f.f)
	case PartTexture:
		if out, err = f.cached(ctx, PartTexture, func() ([][]float32, error) {
			img, err := f.image()
			if err != nil {
				return nil, err
			}
			t, err := Texture(img, f.f)
			return [][]float32{t}, err
		}); err == nil {
			v = out[0]
		}
	case PartEmotionNet:
		if out, err = f.run(ctx, "emotion"); err == nil {
			v = make([]float32, len(Emotions))
			for i, e := range Emotions {
				for k, h := range humanEmotions {
					if h == e && k < len(out[0]) {
						v[i] = float32(math.Log(float64(out[0][k]) + 1e-4))
					}
				}
			}
		}
	case PartSpoofNets:
		var a [][]float32
		if a, err = f.run(ctx, "antispoof"); err != nil {
			break
		}
		if out, err = f.run(ctx, "liveness"); err == nil {
			v = []float32{logit(a[0][0]), logit(out[0][0])}
		}
	case PartFaceRes:
		if out, err = f.run(ctx, "faceres"); err == nil {
			v, err = faceResEstimates(out)
		}
	case PartFaceAPI:
		if out, err = f.run(ctx, "faceapi_age_gender"); err == nil {
			if len(out) != 2 || len(out[0]) != 1 || len(out[1]) != 2 {
				err = fmt.Errorf("faceapi_age_gender gave %d outputs, want age [1], gender [2]", len(out))
				break
			}
			age := math.Max(0, float64(out[0][0]))
			v = []float32{logit(out[1][1]), float32(age), float32(math.Log1p(age))}
		}
	case PartFaceResDesc:
		if out, err = f.run(ctx, "faceres"); err == nil {
			if len(out) != 3 || len(out[1]) != PartDims[PartFaceResDesc] {
				err = fmt.Errorf("faceres gave %d outputs, want gender, descriptor, age", len(out))
				break
			}
			v = l2normalized(out[1])
		}
	default:
		return nil, fmt.Errorf("unknown feature part %q", name)
	}
	if err != nil {
		return nil, fmt.Errorf("feature part %s: %w", name, err)
	}
	f.Parts[name] = v
	return v, nil
}

// faceResEstimates reads FaceRes's outputs (male probability, descriptor,
// a distribution over ages 0..99) as the PartFaceRes values.
func faceResEstimates(out [][]float32) ([]float32, error) {
	if len(out) != 3 || len(out[0]) != 1 || len(out[2]) != 100 {
		return nil, fmt.Errorf("faceres gave %d outputs, want gender [1], descriptor, age [100]", len(out))
	}
	var age, total float64
	for i, p := range out[2] {
		age += float64(i) * float64(p)
		total += float64(p)
	}
	if total > 0 {
		age /= total
	}
	return []float32{logit(out[0][0]), float32(age), float32(math.Log1p(age))}, nil
}

// All computes every part (for training caches).
func (f *Features) All(ctx context.Context) error {
	for name := range PartDims {
		if _, err := f.Part(ctx, name); err != nil {
			return err
		}
	}
	return nil
}

// Detach drops the image, the face and the raw network outputs, so the
// features can outlive them.
func (f *Features) Detach() { f.x, f.image, f.f, f.runs, f.cache = nil, nil, nil, nil, nil }

// Vector assembles a feature set; unavailable parts are filled from fill
// (the head's training means), so that they contribute their average.
func (f *Features) Vector(ctx context.Context, set string, fill []float32) ([]float32, error) {
	var out []float32
	for _, name := range strings.Split(set, "+") {
		dim, ok := PartDims[name]
		if !ok {
			return nil, fmt.Errorf("unknown feature part %q", name)
		}
		v, err := f.Part(ctx, name)
		if err != nil {
			return nil, err
		}
		if v == nil {
			if len(fill) < len(out)+dim {
				return nil, fmt.Errorf("feature part %s is unavailable", name)
			}
			v = fill[len(out) : len(out)+dim]
		}
		if len(v) != dim {
			return nil, fmt.Errorf("feature part %s has %d values, want %d", name, len(v), dim)
		}
		out = append(out, v...)
	}
	return out, nil
}

// SetDim is the length of a feature set's vector.
func SetDim(set string) int {
	n := 0
	for _, name := range strings.Split(set, "+") {
		n += PartDims[name]
	}
	return n
}

func l2normalized(v []float32) []float32 {
	var n float64
	for _, x := range v {
		n += float64(x) * float64(x)
	}
	out := make([]float32, len(v))
	if n == 0 {
		return out
	}
	k := 1 / math.Sqrt(n)
	for i, x := range v {
		out[i] = float32(float64(x) * k)
	}
	return out
}

func logit(p float32) float32 {
	q := math.Min(1-1e-4, math.Max(1e-4, float64(p)))
	return float32(math.Log(q / (1 - q)))
}
