// Command calibrate measures the int8 activation ranges of the compiled
// models that ship int8 (models/calibration/int8/*.txt, committed) on the
// face pipeline's aligned crops of ../shared/corpus photos, or, for object
// detectors, on frames of the vtest.avi fixture; `make calibrate` runs it and
// then `modelc build -update`, which gates and records the rebuilt files.
//
//	calibrate [-model NAME] [-corpus DIR]
//
// It needs the face models `make models` builds (fitting/calibcrops runs the
// project's face pipeline).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"time"

	"imageapid/fitting/calibcrops"
	"imageapid/models"
	"imageapid/models/compiler"
)

func main() {
	manifestPath := flag.String("manifest", "models/manifest.json", "model manifest")
	out := flag.String("out", "models/build", "directory of the built model files (and their package cache)")
	only := flag.String("model", "", "only this model")
	corpus := flag.String("corpus", "../shared/corpus", "the corpus folder")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	root, err := os.Getwd()
	if err == nil {
		err = calibrate(ctx, root, *manifestPath, *out, *only, *corpus)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "calibrate:", err)
		os.Exit(1)
	}
}

func calibrate(ctx context.Context, root, manifestPath, out, only, corpus string) error {
	m, err := models.LoadManifest(manifestPath)
	if err != nil {
		return err
	}
	var list []*models.ModelInfo
	needFaces := false
	for i := range m.Models {
		mi := &m.Models[i]
		if mi.Build != nil && (only == "" || mi.Name == only) && mi.Build.Precision == "int8" && mi.Build.Calibration != "" {
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
		fmt.Printf("calibrate: face pipeline: %d calibration faces (%d fitted on the central box, %d photos without a face), %d agreement faces (%d, %d) in %.1fs\n",
			cal.Len(), cal.BoxFits(), len(cal.Skipped()), agree.Len(), agree.BoxFits(), len(agree.Skipped()), time.Since(start).Seconds())
	}
	fixtures := filepath.Join(root, "third_party", "fixtures")
	for _, mi := range list {
		src, err := compiler.PinnedSource(ctx, m, filepath.Join(out, ".cache"), mi.Source.Package)
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
		b, err := compiler.CalibrateModel(ctx, mi, src, calCrops, agreeCrops, root)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(root, mi.Build.Calibration), b, 0o644); err != nil {
			return err
		}
		ranges, err := compiler.ParseRanges(b)
		if err != nil {
			return err
		}
		gate, _ := compiler.RecordedAgreement(b)
		fmt.Printf("calibrate: %-19s calibrated -> %s (%d tensors); int8 on held-out crops: %v\n", mi.Name, mi.Build.Calibration, len(ranges), gate)
	}
	return nil
}
