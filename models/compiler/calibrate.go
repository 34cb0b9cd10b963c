package compiler

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// uniqueNames renames activation values so that every name is unique: the
// calibration file keys ranges by name.
func uniqueNames(g *Graph) {
	seen := map[string]int{}
	rename := func(v *Value) {
		if k := seen[v.Name]; k > 0 {
			seen[v.Name]++
			v.Name = fmt.Sprintf("%s_%d", v.Name, k)
		}
		seen[v.Name]++
	}
	for _, v := range g.Inputs {
		rename(v)
	}
	for _, op := range g.Ops {
		rename(op.Out)
	}
}

// Calibrate runs the float graph on inputs with every activation exposed and
// returns each activation's observed [min, max].
func (l *Loaded) Calibrate(ctx context.Context, inputs [][]float32) (Ranges, error) {
	probe := &Graph{Name: l.Graph.Name, Inputs: l.Graph.Inputs, Ops: l.Graph.Ops}
	for _, op := range l.Graph.Ops {
		probe.Outputs = append(probe.Outputs, op.Out)
	}
	m, err := Emit(probe, l.description("calibration probe"))
	if err != nil {
		return nil, err
	}
	b, err := m.Encode()
	if err != nil {
		return nil, err
	}
	// Each tensor's range is the mean over samples of the sample's own
	// extremes (the moving-average min/max of quantization-aware training):
	// the global extremes come from a few outlier crops and would spend
	// most of the 256 levels on values typical faces never produce.
	sum := map[string][2]float64{}
	add := func(name string, vals []float32) {
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, x := range vals {
			lo = math.Min(lo, float64(x))
			hi = math.Max(hi, float64(x))
		}
		s := sum[name]
		sum[name] = [2]float64{s[0] + lo, s[1] + hi}
	}
	err = EachTFLite(ctx, l.Spec.Name+"-probe", b, inputs, "none", func(i int, sample [][]float32) {
		add(l.Graph.Inputs[0].Name, inputs[i])
		for k, vals := range sample {
			add(probe.Outputs[k].Name, vals)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("model %s: calibration run: %w", l.Spec.Name, err)
	}
	r := Ranges{}
	for name, s := range sum {
		r[name] = [2]float64{s[0] / float64(len(inputs)), s[1] / float64(len(inputs))}
	}
	return r, nil
}

// FormatRanges writes ranges as "name<TAB>min<TAB>max" lines in graph order
// after a comment header; values keep 6 significant digits so that files are
// stable across runs.
func (l *Loaded) FormatRanges(r Ranges, header []string) []byte {
	var b bytes.Buffer
	for _, h := range header {
		fmt.Fprintf(&b, "# %s\n", h)
	}
	names := []string{l.Graph.Inputs[0].Name}
	for _, op := range l.Graph.Ops {
		names = append(names, op.Out.Name)
	}
	for _, n := range names {
		v, ok := r[n]
		if !ok {
			continue
		}
		fmt.Fprintf(&b, "%s\t%s\t%s\n", n, strconv.FormatFloat(v[0], 'g', 6, 64), strconv.FormatFloat(v[1], 'g', 6, 64))
	}
	return b.Bytes()
}

// ParseRanges reads a calibration file.
func ParseRanges(b []byte) (Ranges, error) {
	r := Ranges{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		s := sc.Text()
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		f := strings.Split(s, "\t")
		if len(f) != 3 {
			return nil, fmt.Errorf("calibration line %d: want name, min, max", line)
		}
		lo, err1 := strconv.ParseFloat(f[1], 64)
		hi, err2 := strconv.ParseFloat(f[2], 64)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("calibration line %d: bad numbers", line)
		}
		r[f[0]] = [2]float64{lo, hi}
	}
	return r, sc.Err()
}

// Int8 emits the int8 TFLite file from calibrated ranges.
func (l *Loaded) Int8(r Ranges) ([]byte, error) {
	q, err := Quantize(l.Graph, r)
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", l.Spec.Name, err)
	}
	m, err := Emit(q, l.description("int8"))
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", l.Spec.Name, err)
	}
	return m.Encode()
}

// OutputAgreement is the int8-vs-float figure of one output.
type OutputAgreement struct {
	Output string  `json:"output"`
	Kind   string  `json:"kind"`
	Value  float64 `json:"value"`
	// Min is the worst sample's cosine, for embeddings.
	Min  float64 `json:"min,omitempty"`
	Pass bool    `json:"pass"`
}

// Int8Parity is the int8 gate's result.
type Int8Parity struct {
	Samples int               `json:"samples"`
	Outputs []OutputAgreement `json:"outputs"`
	// Error says why the int8 model could not run at all.
	Error string `json:"error,omitempty"`
}

// Passed reports whether every output met its gate.
func (p Int8Parity) Passed() bool {
	if p.Error != "" || len(p.Outputs) == 0 {
		return false
	}
	for _, o := range p.Outputs {
		if !o.Pass {
			return false
		}
	}
	return true
}

func (p Int8Parity) String() string {
	if p.Error != "" {
		return "does not run: " + p.Error
	}
	var parts []string
	for _, o := range p.Outputs {
		s := fmt.Sprintf("%s %s %.4g", o.Output, o.Kind, o.Value)
		if o.Kind == "embedding" {
			s += fmt.Sprintf(" (min %.4g)", o.Min)
		}
		if !o.Pass {
			s += " FAIL"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}

// CheckInt8 compares int8 outputs with float outputs per the spec's kinds:
// class/binary argmax agreement >= 0.98; embedding cosine mean >= 0.98 and
// min >= 0.95; age and agedist mean absolute difference <= 1 year.
func (l *Loaded) CheckInt8(float, int8 [][][]float32) Int8Parity {
	p := Int8Parity{Samples: len(float)}
	for k, o := range l.Graph.Outputs {
		kind := "class"
		if k < len(l.Spec.Kinds) {
			kind = l.Spec.Kinds[k]
		}
		a := OutputAgreement{Output: o.Name, Kind: kind}
		var sum float64
		a.Min = math.Inf(1)
		for i := range float {
			f, q := float[i][k], int8[i][k]
			switch kind {
			case "class":
				if argmax(f) == argmax(q) {
					sum++
				}
			case "binary":
				if (f[0] > 0.5) == (q[0] > 0.5) {
					sum++
				}
			case "embedding":
				c := cosine(f, q)
				sum += c
				a.Min = math.Min(a.Min, c)
			case "age":
				sum += math.Abs(float64(f[0] - q[0]))
			case "agedist":
				sum += math.Abs(expectation(f) - expectation(q))
			case "heatmap":
				v := peakAgreement(f, q, o.Shape)
				sum += v
				a.Min = math.Min(a.Min, v)
			case "regression":
				sum += relativeL1(f, q)
			}
		}
		a.Value = sum / float64(max(len(float), 1))
		switch kind {
		case "class", "binary":
			a.Pass = a.Value >= 0.98
			a.Min = 0
		case "embedding":
			a.Pass = a.Value >= 0.98 && a.Min >= 0.95
		case "heatmap":
			a.Pass = a.Value >= 0.95 && a.Min >= 0.8
		case "regression":
			a.Pass = a.Value <= 0.05
			a.Min = 0
		default:
			a.Pass = a.Value <= 1
			a.Min = 0
		}
		p.Outputs = append(p.Outputs, a)
	}
	return p
}

// heatmapPeak and heatmapTolerance define the "heatmap" gate: a peak is a
// cell of one channel at least heatmapPeak that no 3x3 neighbour exceeds
// (a CenterNet detection at a low threshold); int8 keeps a float peak when
// it has a peak of that channel within one cell whose score is within
// heatmapTolerance.
const (
	heatmapPeak      = 0.2
	heatmapTolerance = 0.1
)

// peakAgreement is the F1 score of int8's heatmap peaks against float's on
// an [1,H,W,C] heatmap (1 when neither has a peak).
func peakAgreement(f, q []float32, shape []int) float64 {
	if len(shape) != 4 {
		return 0
	}
	h, w, c := shape[1], shape[2], shape[3]
	peaks := func(v []float32) map[[3]int]float32 {
		out := map[[3]int]float32{}
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				for k := 0; k < c; k++ {
					s := v[(y*w+x)*c+k]
					if s < heatmapPeak {
						continue
					}
					peak := true
					for dy := -1; dy <= 1 && peak; dy++ {
						for dx := -1; dx <= 1; dx++ {
							ny, nx := y+dy, x+dx
							if ny >= 0 && nx >= 0 && ny < h && nx < w && v[(ny*w+nx)*c+k] > s {
								peak = false
								break
							}
						}
					}
					if peak {
						out[[3]int{y, x, k}] = s
					}
				}
			}
		}
		return out
	}
	fp, qp := peaks(f), peaks(q)
	if len(fp)+len(qp) == 0 {
		return 1
	}
	matched := 0
	for at, s := range fp {
		found := false
		for dy := -1; dy <= 1 && !found; dy++ {
			for dx := -1; dx <= 1 && !found; dx++ {
				if t, ok := qp[[3]int{at[0] + dy, at[1] + dx, at[2]}]; ok && math.Abs(float64(t-s)) <= heatmapTolerance {
					found = true
				}
			}
		}
		if found {
			matched++
		}
	}
	return 2 * float64(matched) / float64(len(fp)+len(qp))
}

// relativeL1 is the mean absolute int8 error over the mean absolute float value.
func relativeL1(f, q []float32) float64 {
	var d, n float64
	for i := range f {
		d += math.Abs(float64(f[i] - q[i]))
		n += math.Abs(float64(f[i]))
	}
	if n == 0 {
		return 0
	}
	return d / n
}

func argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

func cosine(a, b []float32) float64 {
	var ab, aa, bb float64
	for i := range a {
		ab += float64(a[i]) * float64(b[i])
		aa += float64(a[i]) * float64(a[i])
		bb += float64(b[i]) * float64(b[i])
	}
	if aa == 0 || bb == 0 {
		return 0
	}
	return ab / math.Sqrt(aa*bb)
}

func expectation(p []float32) float64 {
	var e, s float64
	for i, x := range p {
		e += float64(i) * float64(x)
		s += float64(x)
	}
	if s == 0 {
		return 0
	}
	return e / s
}

var _ = sort.Strings
