package main

import (
	"context"
	"fmt"

	"imageapid/estimators/body"
	"imageapid/internal/evalset"
)

// evalBodies reports person detection recall and precision at IoU >= 0.5
// on files with labelled person boxes, and count accuracy on num_persons,
// for each body detector candidate (the default first): every CenterNet
// build in the manifest (they differ in input size and precision), with
// and without tiling, MoveNet MultiPose and the pose detector. The choice of default stays a
// measured one; `go test ./estimators/body -run '^$' -bench Detectors`
// gives each candidate's cost on a 640x480 frame.
func evalBodies(ctx context.Context, e *env) error {
	def, err := body.Config{}.Defaults()
	if err != nil {
		return err
	}
	cands := []body.Config{def}
	for _, c := range body.Candidates(e.rt) {
		if c != def {
			cands = append(cands, c)
		}
	}
	for i, c := range cands {
		label := c.String()
		if i == 0 {
			label += " (default)"
		}
		fmt.Fprintf(e.out, "   detector %s\n", label)
		if err := evalBodyDetector(ctx, e, c); err != nil {
			return fmt.Errorf("detector %s: %w", c, err)
		}
	}
	return nil
}

func evalBodyDetector(ctx context.Context, e *env, cfg body.Config) error {
	det, err := body.New(e.rt, cfg)
	if err != nil {
		return err
	}
	r, err := evalset.EvalBodies(ctx, e.set, func(ctx context.Context, path string) ([][4]float64, error) {
		img, err := e.imageAt(path)
		if err != nil {
			return nil, err
		}
		defer img.Close()
		ps, err := det.Detect(ctx, img)
		if err != nil {
			return nil, err
		}
		boxes := make([][4]float64, len(ps))
		for i, p := range ps {
			boxes[i] = [4]float64{p.X1, p.Y1, p.X2, p.Y2}
		}
		return boxes, nil
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(e.out, "   boxes: recall %.3f precision %.3f (tp %d, labelled %d, detected %d, %d files)\n",
		r.Recall(), r.Precision(), r.TP, r.Labelled, r.Detected, r.BoxFiles)
	fmt.Fprintf(e.out, "   count accuracy %.3f (%d/%d files with num_persons)\n", r.CountAccuracy(), r.CountOK, r.CountFiles)
	if e.verbose {
		for _, l := range r.PerFile {
			fmt.Fprintln(e.out, "   ", l)
		}
	}
	return nil
}
