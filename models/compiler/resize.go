package compiler

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"path"
	"strconv"
)

// resizedSource rewrites a TF.js graph model (model.json at graph, read
// through src) for a square input of side size: the placeholder's spatial
// dimensions and the signature's, and the constant output size of every
// ResizeBilinear and ResizeNearestNeighbor node, scaled by size over the
// original input side (a graph whose upsampling sizes are fixed constants,
// like CenterNet's feature pyramid, otherwise only runs at its original
// size). Both the compiler and the TF.js reference read the rewritten
// model, so the float gate compares the same graph. A resize size that the
// scale does not map to a whole number of pixels is an error.
func resizedSource(js []byte, graph string, src Source, size int) ([]byte, Source, error) {
	if size <= 0 {
		return nil, nil, fmt.Errorf("input size %d is not positive", size)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(js, &top); err != nil {
		return nil, nil, fmt.Errorf("parse model.json: %w", err)
	}
	var topo map[string]json.RawMessage
	if err := json.Unmarshal(top["modelTopology"], &topo); err != nil {
		return nil, nil, fmt.Errorf("parse modelTopology: %w", err)
	}
	var nodes []map[string]json.RawMessage
	if err := json.Unmarshal(topo["node"], &nodes); err != nil {
		return nil, nil, fmt.Errorf("parse nodes: %w", err)
	}
	type nodeInfo struct {
		Name  string   `json:"name"`
		Op    string   `json:"op"`
		Input []string `json:"input"`
	}
	// The input: one Placeholder of a fixed square NHWC shape.
	from, floatInput := 0, ""
	resizes := map[string]bool{} // names of the constants holding resize sizes
	consts := map[string]bool{}
	for i, raw := range nodes {
		var n nodeInfo
		b, _ := json.Marshal(raw)
		if err := json.Unmarshal(b, &n); err != nil {
			return nil, nil, fmt.Errorf("parse node %d: %w", i, err)
		}
		switch n.Op {
		case "Placeholder":
			if from != 0 {
				return nil, nil, fmt.Errorf("input size: more than one placeholder")
			}
			var attr map[string]json.RawMessage
			if err := json.Unmarshal(raw["attr"], &attr); err != nil {
				return nil, nil, fmt.Errorf("placeholder %s: %w", n.Name, err)
			}
			var shape struct {
				Shape struct {
					Dim []struct {
						Size string `json:"size"`
					} `json:"dim"`
				} `json:"shape"`
			}
			if err := json.Unmarshal(attr["shape"], &shape); err != nil {
				return nil, nil, fmt.Errorf("placeholder %s shape: %w", n.Name, err)
			}
			d := shape.Shape.Dim
			if len(d) != 4 || d[1].Size != d[2].Size {
				return nil, nil, fmt.Errorf("placeholder %s: shape %v is not square NHWC", n.Name, d)
			}
			// A dynamic side (-1) takes the size; its graph computes its
			// upsampling sizes from shapes, which the importer folds.
			if from, _ = strconv.Atoi(d[1].Size); from == -1 {
				from = size
			}
			if from <= 0 {
				return nil, nil, fmt.Errorf("placeholder %s: side %q is not a size", n.Name, d[1].Size)
			}
			d[1].Size, d[2].Size = strconv.Itoa(size), strconv.Itoa(size)
			// An integer image input becomes float (the compiled model takes
			// float32 inputs); the graph's own Cast to float then does nothing.
			if string(attr["dtype"]) == `{"type":"DT_INT32"}` {
				attr["dtype"] = json.RawMessage(`{"type":"DT_FLOAT"}`)
				floatInput = n.Name
			}
			b, err := json.Marshal(shape)
			if err != nil {
				return nil, nil, err
			}
			attr["shape"] = b
			if raw["attr"], err = json.Marshal(attr); err != nil {
				return nil, nil, err
			}
		case "ResizeBilinear", "ResizeNearestNeighbor":
			if len(n.Input) < 2 {
				return nil, nil, fmt.Errorf("node %s has no size input", n.Name)
			}
			resizes[n.Input[1]] = true
		case "Const":
			consts[n.Name] = true
		}
	}
	// Sizes computed from shapes (a graph with a dynamic input) follow the
	// input by themselves once the importer folds them.
	for name := range resizes {
		if !consts[name] {
			delete(resizes, name)
		}
	}
	if from == 0 {
		return nil, nil, fmt.Errorf("input size: no placeholder")
	}
	if floatInput != "" {
		if err := castsFromFloat(nodes, floatInput); err != nil {
			return nil, nil, err
		}
	}
	var err error
	if topo["node"], err = json.Marshal(nodes); err != nil {
		return nil, nil, err
	}
	if top["modelTopology"], err = json.Marshal(topo); err != nil {
		return nil, nil, err
	}
	if sig, ok := top["signature"]; ok {
		if top["signature"], err = resizeSignature(sig, size, floatInput != ""); err != nil {
			return nil, nil, err
		}
	}

	// Patch the resize sizes in the weight files: each is an int32 [2] constant.
	var manifest []struct {
		Paths   []string `json:"paths"`
		Weights []struct {
			Name         string          `json:"name"`
			Shape        []int           `json:"shape"`
			DType        string          `json:"dtype"`
			Quantization json.RawMessage `json:"quantization"`
		} `json:"weights"`
	}
	if err := json.Unmarshal(top["weightsManifest"], &manifest); err != nil {
		return nil, nil, fmt.Errorf("parse weightsManifest: %w", err)
	}
	dir := path.Dir(graph)
	patched := map[string][]byte{} // by path inside the source
	for _, g := range manifest {
		var data []byte
		var spans []int // end offset of each file in data
		for _, p := range g.Paths {
			b, err := src(path.Join(dir, path.Clean(p)))
			if err != nil {
				return nil, nil, err
			}
			data = append(data, b...)
			spans = append(spans, len(data))
		}
		off, changed := 0, false
		for _, w := range g.Weights {
			n := 1
			for _, d := range w.Shape {
				n *= d
			}
			elem := 4
			if len(w.Quantization) > 0 && string(w.Quantization) != "null" {
				var q struct {
					DType string `json:"dtype"`
				}
				json.Unmarshal(w.Quantization, &q)
				elem = map[string]int{"uint8": 1, "uint16": 2, "float16": 2}[q.DType]
				if elem == 0 {
					return nil, nil, fmt.Errorf("weight %s: unsupported quantization %s", w.Name, w.Quantization)
				}
				if resizes[w.Name] {
					return nil, nil, fmt.Errorf("resize size %s is quantized", w.Name)
				}
			} else if w.DType == "bool" {
				elem = 1
			}
			if resizes[w.Name] {
				if w.DType != "int32" || n != 2 || off+8 > len(data) {
					return nil, nil, fmt.Errorf("resize size %s is not an int32 pair", w.Name)
				}
				for k := 0; k < 2; k++ {
					v := int(int32(binary.LittleEndian.Uint32(data[off+4*k:])))
					if v*size%from != 0 {
						return nil, nil, fmt.Errorf("resize size %s: %d x %d/%d is not whole", w.Name, v, size, from)
					}
					binary.LittleEndian.PutUint32(data[off+4*k:], uint32(int32(v*size/from)))
				}
				delete(resizes, w.Name)
				changed = true
			}
			off += n * elem
		}
		if changed {
			start := 0
			for i, p := range g.Paths {
				patched[path.Join(dir, path.Clean(p))] = data[start:spans[i]]
				start = spans[i]
			}
		}
	}
	for name := range resizes {
		return nil, nil, fmt.Errorf("resize size %s is not a weight constant", name)
	}
	out, err := json.Marshal(top)
	if err != nil {
		return nil, nil, err
	}
	return out, func(name string) ([]byte, error) {
		if b, ok := patched[name]; ok {
			return b, nil
		}
		return src(name)
	}, nil
}

// resizeSignature sets the spatial dimensions of the signature's 4-D inputs.
func resizeSignature(raw json.RawMessage, size int, float bool) (json.RawMessage, error) {
	var sig map[string]json.RawMessage
	if err := json.Unmarshal(raw, &sig); err != nil {
		return nil, fmt.Errorf("parse signature: %w", err)
	}
	var inputs map[string]map[string]json.RawMessage
	if err := json.Unmarshal(sig["inputs"], &inputs); err != nil {
		return nil, fmt.Errorf("parse signature inputs: %w", err)
	}
	for _, in := range inputs {
		var ts struct {
			Dim []struct {
				Size string `json:"size"`
			} `json:"dim"`
		}
		if err := json.Unmarshal(in["tensorShape"], &ts); err != nil {
			return nil, err
		}
		if len(ts.Dim) == 4 {
			ts.Dim[1].Size, ts.Dim[2].Size = strconv.Itoa(size), strconv.Itoa(size)
		}
		if float {
			in["dtype"] = json.RawMessage(`"DT_FLOAT"`)
		}
		b, err := json.Marshal(ts)
		if err != nil {
			return nil, err
		}
		in["tensorShape"] = b
	}
	var err error
	if sig["inputs"], err = json.Marshal(inputs); err != nil {
		return nil, err
	}
	return json.Marshal(sig)
}

// castsFromFloat makes every Cast reading the input node cast from float;
// any other consumer of a retyped integer input is an error.
func castsFromFloat(nodes []map[string]json.RawMessage, input string) error {
	for _, raw := range nodes {
		var n struct {
			Name  string   `json:"name"`
			Op    string   `json:"op"`
			Input []string `json:"input"`
		}
		b, _ := json.Marshal(raw)
		json.Unmarshal(b, &n)
		for _, in := range n.Input {
			if in != input && in != input+":0" {
				continue
			}
			if n.Op != "Cast" {
				return fmt.Errorf("integer input %s feeds %s (%s), not a Cast", input, n.Name, n.Op)
			}
			var attr map[string]json.RawMessage
			if err := json.Unmarshal(raw["attr"], &attr); err != nil {
				return err
			}
			attr["SrcT"] = json.RawMessage(`{"type":"DT_FLOAT"}`)
			var err error
			if raw["attr"], err = json.Marshal(attr); err != nil {
				return err
			}
		}
	}
	return nil
}
