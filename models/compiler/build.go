package compiler

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"imageapid/models"
	"imageapid/models/tfjsref"
)

// BuildOptions configure BuildModel.
type BuildOptions struct {
	// Root is the project root (calibration files, fixtures, node modules).
	Root string
	// Gate supplies the crops the gates run on; nil means FixtureCrops{N: 4}.
	Gate CropSource
	// Update writes the measured parity, shipped precision and notes into mi.
	Update bool
	Log    io.Writer
}

// SpecFor turns a manifest entry into a compiler spec, reading its calibration file.
func SpecFor(mi *models.ModelInfo, root string) (Spec, error) {
	b := mi.Build
	if b == nil || (b.Tool != "tfjs" && b.Tool != "tfjs-weights" && b.Tool != "onnx") {
		return Spec{}, fmt.Errorf("model %s: no tfjs or onnx build section", mi.Name)
	}
	spec := Spec{Name: mi.Name, Graph: mi.Source.Path, Precision: b.Precision, Outputs: b.Outputs,
		Input: InputSpec{Color: b.Input.Color, Range: b.Input.Range}, Kinds: b.Kinds, InputSize: b.InputSize,
		ONNX: b.Tool == "onnx"}
	if spec.ONNX && (b.InputSize != 0 || len(b.Outputs) != 0 || b.Description != "") {
		return Spec{}, fmt.Errorf("model %s: an onnx build takes no input_size, outputs or description", mi.Name)
	}
	if b.Tool == "tfjs-weights" {
		if b.Description == "" || b.InputSize != 0 {
			return Spec{}, fmt.Errorf("model %s: a tfjs-weights build needs a description (and takes no input_size)", mi.Name)
		}
		raw, err := os.ReadFile(filepath.Join(root, b.Description))
		if err != nil {
			return Spec{}, fmt.Errorf("model %s: %w", mi.Name, err)
		}
		if spec.Description, err = ParseDescription(raw); err != nil {
			return Spec{}, fmt.Errorf("model %s: %s: %w", mi.Name, b.Description, err)
		}
	}
	if b.Precision == "int8" {
		if b.Calibration == "" {
			return Spec{}, fmt.Errorf("model %s: int8 needs a calibration file", mi.Name)
		}
		raw, err := os.ReadFile(filepath.Join(root, b.Calibration))
		if err != nil {
			return Spec{}, fmt.Errorf("model %s: %w (run `make calibrate` where ../shared exists)", mi.Name, err)
		}
		if spec.Ranges, err = ParseRanges(raw); err != nil {
			return Spec{}, fmt.Errorf("model %s: %s: %w", mi.Name, b.Calibration, err)
		}
		spec.Agreement, spec.AgreementCrops = RecordedAgreement(raw)
	}
	return spec, nil
}

// BuildModel compiles one manifest entry and runs the gates: float parity
// with TF.js always, int8 agreement with float when int8 is asked for. A
// float model that fails parity is an error; an int8 model that fails its
// gate is replaced by the float one (recorded in mi when Update is set).
func BuildModel(ctx context.Context, mi *models.ModelInfo, src Source, opt BuildOptions) ([]byte, error) {
	start := time.Now()
	spec, err := SpecFor(mi, opt.Root)
	if err != nil {
		return nil, err
	}
	l, err := Load(spec, src)
	if err != nil {
		return nil, err
	}
	fb, err := l.Float()
	if err != nil {
		return nil, err
	}
	gate := opt.Gate
	if gate == nil {
		gate = FixtureCrops{Dir: filepath.Join(opt.Root, "third_party", "fixtures"), N: 4}
	}
	crops, err := gate.Crops(ctx)
	if err != nil {
		return nil, err
	}
	inputs, err := l.Inputs(crops)
	if err != nil {
		return nil, err
	}
	want, err := l.Reference(ctx, tfjsref.Default(opt.Root), inputs)
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", mi.Name, err)
	}
	got, err := RunTFLite(ctx, mi.Name, fb, inputs, models.DelegateXNNPACK)
	if err != nil {
		return nil, fmt.Errorf("model %s: float model does not run: %w", mi.Name, err)
	}
	fp, err := CheckFloat(got, want)
	if err != nil {
		return nil, fmt.Errorf("model %s: refusing to emit: %w", mi.Name, err)
	}
	parity := &models.BuildParity{Crops: gate.Describe(), FloatSamples: fp.Samples, FloatMaxErr: roundSig(fp.MaxErr)}
	out, precision, notes := fb, "float32", ""
	if spec.Precision == "int8" {
		qb, err := l.Int8(spec.Ranges)
		if err != nil {
			return nil, err
		}
		corpusFailed := spec.Agreement != nil && !spec.Agreement.Passed()
		if spec.Agreement != nil {
			parity.CorpusCrops = spec.AgreementCrops
			parity.CorpusSamples = spec.Agreement.Samples
			for _, o := range spec.Agreement.Outputs {
				parity.Corpus = append(parity.Corpus, models.Int8Agreement{Output: o.Output, Kind: o.Kind,
					Value: roundSig(o.Value), Min: roundSig(o.Min), Pass: o.Pass})
			}
		}
		// The build-time gate runs only when the corpus gate passed (or was
		// never measured): there is no point running a model that ships float.
		var ip Int8Parity
		if !corpusFailed {
			var qo [][][]float32
			if qo, err = RunTFLite(ctx, mi.Name, qb, inputs, models.DelegateXNNPACK); err == nil {
				ip = l.CheckInt8(got, qo)
			}
			parity.Int8Samples = ip.Samples
			for _, o := range ip.Outputs {
				parity.Int8 = append(parity.Int8, models.Int8Agreement{Output: o.Output, Kind: o.Kind,
					Value: roundSig(o.Value), Min: roundSig(o.Min), Pass: o.Pass})
			}
		}
		switch {
		case corpusFailed:
			notes = "int8 asked for but shipped float32: int8 gate failed on " + spec.AgreementCrops + " (" + spec.Agreement.String() + ")"
		case err != nil:
			notes = "int8 asked for but shipped float32: the int8 model does not run under XNNPACK (" + err.Error() + ")"
		case ip.Passed():
			out, precision = qb, "int8"
		default:
			notes = "int8 asked for but shipped float32: int8 gate failed (" + ip.String() + ")"
		}
	}
	if opt.Log != nil {
		fmt.Fprintf(opt.Log, "modelc: %-14s %-7s %s, %d bytes, float max err %.2g on %d crops%s (%.1fs)\n",
			mi.Name, precision, l.OpSummary(), len(out), fp.MaxErr, fp.Samples, int8Summary(parity), time.Since(start).Seconds())
	}
	if opt.Update {
		mi.Precision = precision
		mi.Build.Parity = parity
		mi.Notes = notes
	}
	return out, nil
}

func int8Summary(p *models.BuildParity) string {
	if len(p.Int8) == 0 {
		return ""
	}
	s := ", int8:"
	for _, o := range p.Int8 {
		s += fmt.Sprintf(" %s=%.4g", o.Kind, o.Value)
		if !o.Pass {
			s += "(fail)"
		}
	}
	return s
}

// roundSig keeps 4 significant digits so that manifests stay readable.
func roundSig(x float64) float64 {
	if x == 0 {
		return 0
	}
	var v float64
	fmt.Sscanf(fmt.Sprintf("%.4g", x), "%g", &v)
	return v
}

// CalibrateModel measures a model's activation ranges on crops and returns
// the calibration file's contents; with agree set it also measures int8
// agreement on those held-out crops and records it in the file, where the
// build reads it as the corpus gate.
func CalibrateModel(ctx context.Context, mi *models.ModelInfo, src Source, crops, agree CropSource, root string) ([]byte, error) {
	spec, err := SpecFor(&models.ModelInfo{Name: mi.Name, Source: mi.Source, Build: &models.Build{
		Tool: mi.Build.Tool, Description: mi.Build.Description, Precision: "float32", Input: mi.Build.Input, Kinds: mi.Build.Kinds, Outputs: mi.Build.Outputs,
		InputSize: mi.Build.InputSize}}, root)
	if err != nil {
		return nil, err
	}
	l, err := Load(spec, src)
	if err != nil {
		return nil, err
	}
	imgs, err := crops.Crops(ctx)
	if err != nil {
		return nil, err
	}
	inputs, err := l.Inputs(imgs)
	if err != nil {
		return nil, err
	}
	r, err := l.Calibrate(ctx, inputs)
	if err != nil {
		return nil, err
	}
	header := []string{
		fmt.Sprintf("Activation ranges of %s (%s %s) for int8 quantization.", mi.Name, mi.Source.Package, mi.Source.Path),
		fmt.Sprintf("Measured on %s.", crops.Describe()),
		"Regenerate with `make calibrate` (needs ../shared/corpus); do not edit by hand.",
	}
	if agree != nil {
		p, err := l.measureInt8(ctx, r, agree)
		if err != nil {
			return nil, err
		}
		j, _ := json.Marshal(p)
		header = append(header, fmt.Sprintf("Int8 agreement with float on %s:", agree.Describe()), agreementPrefix+string(j))
	}
	return l.FormatRanges(r, header), nil
}

// agreementPrefix marks the calibration file's line holding the int8 gate
// figures measured on held-out corpus crops.
const agreementPrefix = "agreement "

// measureInt8 runs float and int8 under XNNPACK on crops and compares them.
func (l *Loaded) measureInt8(ctx context.Context, r Ranges, crops CropSource) (*Int8Parity, error) {
	imgs, err := crops.Crops(ctx)
	if err != nil {
		return nil, err
	}
	inputs, err := l.Inputs(imgs)
	if err != nil {
		return nil, err
	}
	fb, err := l.Float()
	if err != nil {
		return nil, err
	}
	qb, err := l.Int8(r)
	if err != nil {
		return nil, err
	}
	fo, err := RunTFLite(ctx, l.Spec.Name, fb, inputs, models.DelegateXNNPACK)
	if err != nil {
		return nil, err
	}
	qo, err := RunTFLite(ctx, l.Spec.Name, qb, inputs, models.DelegateXNNPACK)
	if err != nil {
		// Recorded as a failed gate: the build then ships float.
		return &Int8Parity{Samples: len(inputs), Error: err.Error()}, nil
	}
	p := l.CheckInt8(fo, qo)
	return &p, nil
}

// RecordedAgreement reads the int8 figures calibration recorded in a
// calibration file (nil when it holds none) and the crops they were measured on.
func RecordedAgreement(raw []byte) (*Int8Parity, string) {
	var crops string
	for _, line := range strings.Split(string(raw), "\n") {
		if c, ok := strings.CutPrefix(line, "# Int8 agreement with float on "); ok {
			crops = strings.TrimSuffix(c, ":")
		}
		if j, ok := strings.CutPrefix(line, "# "+agreementPrefix); ok {
			var p Int8Parity
			if json.Unmarshal([]byte(j), &p) == nil {
				return &p, crops
			}
		}
	}
	return nil, ""
}
