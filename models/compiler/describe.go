package compiler

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"

	"imageapid/models/tfjs"
	"imageapid/models/tfjsref"
)

// Description is the hand-written graph of a weights-only TF.js model (a
// weights manifest and its .bin files, whose architecture lives in a
// library's code). Graph turns it into the equivalent TF.js GraphDef node
// list, so the importer, the rewrites, the emitter and the gates treat it
// like any graph model; the float gate then compares the compiled file
// with the library's own code (Reference), not with the description.
type Description struct {
	// About says which library code the layers transcribe.
	About string `json:"about"`
	// Input is the graph input's name and NHWC shape (batch 1).
	Input struct {
		Name  string `json:"name"`
		Shape []int  `json:"shape"`
	} `json:"input"`
	Layers []Layer `json:"layers"`
	// Outputs name the layers whose values are the graph outputs, in order.
	Outputs   []string         `json:"outputs"`
	Reference *tfjsref.Library `json:"reference"`
}

// Layer is one step of a Description. Its input is the previous layer's
// output unless From names other layers (the graph input is Input.Name).
// Ops and their fields:
//
//	normalize  (x - Mean) / Div, per channel
//	conv       Conv2D with Weights+"/filters" (HWIO) and Weights+"/bias"
//	sepconv    depthwise Weights+"/depthwise_filter", then 1x1
//	           Weights+"/pointwise_filter", plus Weights+"/bias" (tf.separableConv2d)
//	dense      MatMul with Weights+"/weights" ([in,out]) plus Weights+"/bias"
//	matmul     MatMul with the weight Weights ([in,out]), no bias
//	scale      x * Weights+"/weights" + Weights+"/biases", per channel
//	           (face-api's scale layer after a convolution)
//	pad        zeros around x: Pad holds [before, after] per dimension
//	mean       the mean over height and width ([1, C])
//	maxpool, avgpool  a Size x Size window
//	add        the sum of the two layers in From
//	relu, softmax, flatten ([1, -1])
//
// Stride defaults to 1 and Padding to "same" (pools and 1x1 pointwise
// convolutions as their TF.js code says); Relu appends a ReLU.
type Layer struct {
	Name    string    `json:"name"`
	Op      string    `json:"op"`
	From    []string  `json:"from,omitempty"`
	Weights string    `json:"weights,omitempty"`
	Stride  int       `json:"stride,omitempty"`
	Size    int       `json:"size,omitempty"`
	Padding string    `json:"padding,omitempty"`
	Relu    bool      `json:"relu,omitempty"`
	Mean    []float32 `json:"mean,omitempty"`
	Div     float32   `json:"div,omitempty"`
	Pad     [][2]int  `json:"pad,omitempty"`
}

// ParseDescription reads a description file.
func ParseDescription(b []byte) (*Description, error) {
	var d Description
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("graph description: %w", err)
	}
	if d.Input.Name == "" || len(d.Input.Shape) != 4 || len(d.Layers) == 0 || len(d.Outputs) == 0 {
		return nil, fmt.Errorf("graph description: needs an input name, an NHWC input shape, layers and outputs")
	}
	return &d, nil
}

// Graph builds the TF.js model of the description over the weights manifest
// weightsJSON (a weights-manifest file, as the package ships it); readFile
// reads the .bin files it names, relative to its folder.
func (d *Description) Graph(weightsJSON []byte, readFile func(name string) ([]byte, error)) (*tfjs.Model, error) {
	// The weights decode as those of a graph model with no nodes.
	wrapped, err := json.Marshal(map[string]any{"format": "graph-model", "modelTopology": map[string]any{"node": []any{}},
		"weightsManifest": json.RawMessage(weightsJSON)})
	if err != nil {
		return nil, fmt.Errorf("graph description: weights manifest: %w", err)
	}
	m, err := tfjs.Read(wrapped, readFile)
	if err != nil {
		return nil, fmt.Errorf("graph description: %w", err)
	}
	b := &graphBuilder{m: m, used: map[string]bool{}}
	b.node(d.Input.Name, "Placeholder", nil, map[string]tfjs.Attr{"shape": shapeAttr(d.Input.Shape)})
	prev := d.Input.Name
	names := map[string]bool{d.Input.Name: true}
	for _, l := range d.Layers {
		if l.Name == "" || names[l.Name] {
			return nil, fmt.Errorf("graph description: layer %q: missing or repeated name", l.Name)
		}
		from := l.From
		if len(from) == 0 {
			from = []string{prev}
		}
		for _, f := range from {
			if !names[f] {
				return nil, fmt.Errorf("graph description: layer %s reads %q, which no earlier layer is", l.Name, f)
			}
		}
		if err := b.layer(l, from); err != nil {
			return nil, fmt.Errorf("graph description: layer %s (%s): %w", l.Name, l.Op, err)
		}
		names[l.Name] = true
		prev = l.Name
	}
	for _, w := range m.Weights {
		if !b.used[w.Name] {
			return nil, fmt.Errorf("graph description: weight %s is never read (a layer is missing)", w.Name)
		}
	}
	for _, o := range d.Outputs {
		if !names[o] {
			return nil, fmt.Errorf("graph description: output %q is no layer", o)
		}
		m.Outputs = append(m.Outputs, tfjs.Port{Key: o, Tensor: o})
	}
	m.Inputs = []tfjs.Port{{Key: d.Input.Name, Tensor: d.Input.Name, Shape: d.Input.Shape}}
	return m, nil
}

// graphBuilder appends GraphDef nodes and the constants they read.
type graphBuilder struct {
	m    *tfjs.Model
	used map[string]bool
}

func (b *graphBuilder) node(name, op string, inputs []string, attr map[string]tfjs.Attr) string {
	b.m.Nodes = append(b.m.Nodes, tfjs.Node{Name: name, Op: op, Inputs: inputs, Attr: attr})
	return name
}

// weight returns the Const node of a manifest weight.
func (b *graphBuilder) weight(name string, rank int) (string, error) {
	w, ok := b.m.Weights[name]
	if !ok {
		return "", fmt.Errorf("the weights manifest has no %s", name)
	}
	if len(w.Shape) != rank || w.F32 == nil {
		return "", fmt.Errorf("weight %s has shape %v (%s), want rank %d float", name, w.Shape, w.DType, rank)
	}
	b.used[name] = true
	return b.node(name, "Const", nil, nil), nil
}

// constant adds a Const node with its own (generated) value.
func (b *graphBuilder) constant(name string, shape []int, f32 []float32, i32 []int32) string {
	t := &tfjs.Tensor{Name: name, Shape: shape, DType: "float32", F32: f32, I32: i32}
	if i32 != nil {
		t.DType = "int32"
	}
	b.m.Weights[name] = t
	b.used[name] = true
	return b.node(name, "Const", nil, nil)
}

func (b *graphBuilder) layer(l Layer, from []string) error {
	x := from[0]
	stride := l.Stride
	if stride == 0 {
		stride = 1
	}
	pad := "SAME"
	if l.Padding == "valid" {
		pad = "VALID"
	} else if l.Padding != "" && l.Padding != "same" {
		return fmt.Errorf("padding %q is neither same nor valid", l.Padding)
	}
	if l.Op != "add" && len(from) != 1 {
		return fmt.Errorf("reads %d layers, want 1", len(from))
	}
	out := l.Name
	if l.Relu {
		out = l.Name + "/prerelu"
	}
	switch l.Op {
	case "normalize":
		if len(l.Mean) == 0 || l.Div == 0 {
			return fmt.Errorf("needs mean and div")
		}
		mean := b.constant(l.Name+"/mean", []int{len(l.Mean)}, l.Mean, nil)
		centred := b.node(l.Name+"/centred", "Sub", []string{x, mean}, nil)
		div := b.constant(l.Name+"/div", nil, []float32{l.Div}, nil)
		b.node(out, "RealDiv", []string{centred, div}, nil)
	case "conv":
		w, err := b.weight(l.Weights+"/filters", 4)
		if err != nil {
			return err
		}
		conv := b.node(l.Name+"/conv", "Conv2D", []string{x, w}, convAttrs(stride, pad))
		if err := b.bias(out, conv, l.Weights); err != nil {
			return err
		}
	case "sepconv":
		dw, err := b.weight(l.Weights+"/depthwise_filter", 4)
		if err != nil {
			return err
		}
		pw, err := b.weight(l.Weights+"/pointwise_filter", 4)
		if err != nil {
			return err
		}
		d := b.node(l.Name+"/depthwise", "DepthwiseConv2dNative", []string{x, dw}, convAttrs(stride, pad))
		p := b.node(l.Name+"/pointwise", "Conv2D", []string{d, pw}, convAttrs(1, "VALID"))
		if err := b.bias(out, p, l.Weights); err != nil {
			return err
		}
	case "dense":
		w, err := b.weight(l.Weights+"/weights", 2)
		if err != nil {
			return err
		}
		mm := b.node(l.Name+"/matmul", "MatMul", []string{x, w}, nil)
		if err := b.bias(out, mm, l.Weights); err != nil {
			return err
		}
	case "matmul":
		w, err := b.weight(l.Weights, 2)
		if err != nil {
			return err
		}
		b.node(out, "MatMul", []string{x, w}, nil)
	case "scale":
		w, err := b.weight(l.Weights+"/weights", 1)
		if err != nil {
			return err
		}
		bias, err := b.weight(l.Weights+"/biases", 1)
		if err != nil {
			return err
		}
		scaled := b.node(l.Name+"/mul", "Mul", []string{x, w}, nil)
		b.node(out, "AddV2", []string{scaled, bias}, nil)
	case "pad":
		if len(l.Pad) != 4 {
			return fmt.Errorf("needs [before, after] for each of the 4 dimensions")
		}
		var p []int32
		for _, d := range l.Pad {
			if d[0] < 0 || d[1] < 0 {
				return fmt.Errorf("negative padding %v", l.Pad)
			}
			p = append(p, int32(d[0]), int32(d[1]))
		}
		paddings := b.constant(l.Name+"/paddings", []int{4, 2}, nil, p)
		b.node(out, "Pad", []string{x, paddings}, nil)
	case "mean":
		axes := b.constant(l.Name+"/axes", []int{2}, nil, []int32{1, 2})
		b.node(out, "Mean", []string{x, axes}, map[string]tfjs.Attr{"keep_dims": boolAttr(false)})
	case "maxpool", "avgpool":
		if l.Size == 0 {
			return fmt.Errorf("needs a window size")
		}
		op := map[string]string{"maxpool": "MaxPool", "avgpool": "AvgPool"}[l.Op]
		b.node(out, op, []string{x}, map[string]tfjs.Attr{"ksize": intsAttr(1, l.Size, l.Size, 1),
			"strides": intsAttr(1, stride, stride, 1), "padding": strAttr(pad)})
	case "add":
		if len(from) != 2 {
			return fmt.Errorf("adds %d layers, want 2", len(from))
		}
		b.node(out, "AddV2", from, nil)
	case "relu":
		b.node(out, "Relu", []string{x}, nil)
	case "softmax":
		b.node(out, "Softmax", []string{x}, nil)
	case "flatten":
		shape := b.constant(l.Name+"/shape", []int{2}, nil, []int32{1, -1})
		b.node(out, "Reshape", []string{x, shape}, nil)
	default:
		return fmt.Errorf("unknown op")
	}
	if l.Relu {
		b.node(l.Name, "Relu", []string{out}, nil)
	}
	return nil
}

// bias adds the layer's Weights+"/bias" to x as node name.
func (b *graphBuilder) bias(name, x, prefix string) error {
	bias, err := b.weight(prefix+"/bias", 1)
	if err != nil {
		return err
	}
	b.node(name, "BiasAdd", []string{x, bias}, nil)
	return nil
}

func convAttrs(stride int, padding string) map[string]tfjs.Attr {
	return map[string]tfjs.Attr{"strides": intsAttr(1, stride, stride, 1), "padding": strAttr(padding),
		"data_format": strAttr("NHWC")}
}

func boolAttr(v bool) tfjs.Attr {
	return tfjs.Attr{B: &v}
}

func strAttr(s string) tfjs.Attr {
	e := base64.StdEncoding.EncodeToString([]byte(s))
	return tfjs.Attr{S: &e}
}

func intsAttr(v ...int) tfjs.Attr {
	var a tfjs.Attr
	a.List = &struct {
		S []string `json:"s"`
		I []string `json:"i"`
		F []float64
	}{}
	for _, x := range v {
		a.List.I = append(a.List.I, strconv.Itoa(x))
	}
	return a
}

func shapeAttr(shape []int) tfjs.Attr {
	var a tfjs.Attr
	a.Shape = &struct {
		Dim []struct {
			Size string `json:"size"`
		} `json:"dim"`
	}{}
	for _, d := range shape {
		a.Shape.Dim = append(a.Shape.Dim, struct {
			Size string `json:"size"`
		}{strconv.Itoa(d)})
	}
	return a
}
