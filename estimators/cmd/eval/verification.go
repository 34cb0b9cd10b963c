package main

import (
	"context"
	"fmt"

	"imageapid/estimators/facetemplate"
	"imageapid/internal/evalset"
)

// evalVerification reports 1:1 verification over the set's pairs with the
// largest face of each file: accuracy at the best and at the calibrated
// (corpus EER) threshold, EER and TAR at FAR = 1%, for each embedder variant.
func evalVerification(ctx context.Context, e *env) error {
	p, err := e.facePipeline()
	if err != nil {
		return err
	}
	for _, flip := range []bool{false, true} {
		emb, err := facetemplate.NewEmbedder(e.rt, facetemplate.DefaultNetwork, flip)
		if err != nil {
			return err
		}
		cal, err := facetemplate.LoadCalibration(facetemplate.DefaultNetwork, flip)
		if err != nil {
			fmt.Fprintf(e.out, "   %s flip=%v: %v\n", facetemplate.DefaultNetwork, flip, err)
			continue
		}
		r, err := evalset.EvalVerification(ctx, e.set, cal.EERThreshold, 4,
			func(ctx context.Context, path string) ([]float32, error) {
				img, err := e.imageAt(path)
				if err != nil {
					return nil, err
				}
				defer img.Close()
				return facetemplate.LargestFace(ctx, p, emb, img)
			}, facetemplate.Distance)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.out, "   %s flip=%v: %d pairs (%d same), %d files, %d without a face\n",
			facetemplate.DefaultNetwork, flip, r.Pairs, r.Same, r.Files, r.NoTemplate)
		fmt.Fprintf(e.out, "     accuracy %.3f at best threshold %.3f; %.3f at calibrated threshold %.3f\n",
			r.BestAccuracy, r.BestThreshold, r.AccuracyAtConfigured, r.ConfiguredThreshold)
		fmt.Fprintf(e.out, "     EER %.1f%%  TAR@FAR=1%% %.3f\n", 100*r.EER, r.TARAtFAR1)
	}
	return nil
}
