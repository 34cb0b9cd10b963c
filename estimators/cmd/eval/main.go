// Command eval measures the estimators on a labelled folder (a manifest.json
// in the schema of ../shared/testdata) and prints the figures per task:
//
//	go run ./estimators/cmd/eval --data ../shared/testdata [--tasks bodies,verification]
//
// A task is one file here with a function registered in tasks; adding one
// means adding its file and one line.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"gocv.io/x/gocv"

	"imageapid/estimators"
	"imageapid/estimators/face"
	"imageapid/internal/evalenv"
	"imageapid/internal/evalset"
	"imageapid/models"
)

// env is what a task runs with.
type env struct {
	set     *evalset.Set
	rt      *models.Runtime
	modelsD string
	faces   *face.Pipeline // built on first use
	out     *os.File
	verbose bool
	// fallbackDecodes counts files the daemon's decoder refuses.
	fallbackDecodes int
}

// task runs one evaluation and prints its figures.
type task func(ctx context.Context, e *env) error

var tasks = map[string]task{
	"bodies":       evalBodies,
	"detection":    evalDetection,
	"verification": evalVerification,
	"attributes":   evalAttributes,
}

func main() {
	data := flag.String("data", "../shared/testdata", "evaluation folder with manifest.json")
	modelDir := flag.String("models", "models", "folder with manifest.json and build/")
	only := flag.String("tasks", "", "comma-separated tasks (default all)")
	verbose := flag.Bool("v", false, "print per-file lines")
	timeout := flag.Duration("timeout", 30*time.Minute, "give up after this long")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	if err := run(ctx, *data, *modelDir, *only, *verbose); err != nil {
		fmt.Fprintln(os.Stderr, "eval:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, data, modelDir, only string, verbose bool) error {
	set, err := evalset.Load(data)
	if err != nil {
		return err
	}
	rt, err := evalenv.Runtime(modelDir)
	if err != nil {
		return err
	}
	defer rt.Close()
	e := &env{set: set, rt: rt, modelsD: modelDir, out: os.Stdout, verbose: verbose}
	names := make([]string, 0, len(tasks))
	if only == "" {
		for n := range tasks {
			names = append(names, n)
		}
		sort.Strings(names)
	} else {
		names = strings.Split(only, ",")
	}
	for _, n := range names {
		t, ok := tasks[n]
		if !ok {
			return fmt.Errorf("unknown task %q", n)
		}
		fmt.Fprintf(e.out, "== %s (%s)\n", n, data)
		start := time.Now()
		if err := t(ctx, e); err != nil {
			return fmt.Errorf("task %s: %w", n, err)
		}
		fmt.Fprintf(e.out, "   (%.1fs; %d files in formats the daemon refuses, decoded by OpenCV)\n", time.Since(start).Seconds(), e.fallbackDecodes)
		e.fallbackDecodes = 0
	}
	return nil
}

// imageAt decodes an image file as the daemon does.
func (e *env) imageAt(path string) (gocv.Mat, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return gocv.Mat{}, err
	}
	img, err := estimators.DecodeImage(b, 50_000_000)
	if _, refused := estimators.IsInputError(err); refused {
		// A format the daemon refuses (such as WebP saved as .jpg): the
		// models are still measured on it, through OpenCV's own decoder.
		img, err = gocv.IMDecode(b, gocv.IMReadColor)
		if err == nil && img.Empty() {
			err = fmt.Errorf("undecodable")
		}
		if err == nil {
			e.fallbackDecodes++
		}
	}
	if err != nil {
		return gocv.Mat{}, fmt.Errorf("%s: %w", path, err)
	}
	return img, nil
}

// facePipeline builds the shared face pipeline once.
func (e *env) facePipeline() (*face.Pipeline, error) {
	if e.faces == nil {
		p, err := face.New(e.rt, face.Config{GeometryFile: filepath.Join(e.modelsD, "build", "face_geometry.binarypb")})
		if err != nil {
			return nil, err
		}
		e.faces = p
	}
	return e.faces, nil
}
