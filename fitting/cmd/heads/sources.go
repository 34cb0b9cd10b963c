package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"imageapid/estimators/attributes"
	"imageapid/fitting/headfit"
)

// livenessSourcesTable prints, for the single-image services' liveness
// heads in headsDir, APCER, BPCER and ACER on every corpus liveness source
// the head (its recipe: feature set and penalty) has not seen, at 0.5 and
// at a threshold read off the other sources. A head fitted on CelebA-Spoof
// alone is scored as committed on the eight liveness2 sources and by
// five-fold cross-validation on CelebA-Spoof; a head fitted on every
// source is refitted with each source left out in turn (leave-one-source-
// out), and CelebA-Spoof is also scored over five folds (by file: the subset names no people)
// with the other sources in every fit (what a CelebA-like camera loses).
func livenessSourcesTable(ctx context.Context, corpusDir, headsDir, modelDir, cache string, names []string, grid bool) error {
	samples, err := livenessSamples(ctx, corpusDir, modelDir, cache)
	if err != nil {
		return err
	}
	for _, name := range names {
		head, err := attributes.LoadHeadFile(filepath.Join(headsDir, name+".json"))
		if err != nil {
			return err
		}
		var scores []headfit.SourceScores
		var ts []float64
		var inSource headfit.SourceScores
		multi := strings.Contains(head.Fit.Data, "liveness2")
		if multi {
			if scores, ts, err = headfit.NestedThresholds(samples, head.Features, head.Fit.Lambda, head.Fit.SourceWeights); err != nil {
				return err
			}
			if inSource, err = headfit.InSourceFolds(samples, headfit.CelebASource, head.Features, head.Fit.Lambda, true, head.Fit.SourceWeights); err != nil {
				return err
			}
		} else {
			if scores, err = headfit.ScoreBySource(samples, head); err != nil {
				return err
			}
			for i, s := range scores {
				if s.Source == headfit.CelebASource {
					if scores[i], err = headfit.InSourceFolds(samples, s.Source, head.Features, head.Fit.Lambda, false, nil); err != nil {
						return err
					}
				}
			}
			for i := range scores {
				others := append(append([]headfit.SourceScores(nil), scores[:i]...), scores[i+1:]...)
				ts = append(ts, headfit.BestThreshold(others))
			}
		}
		how := "fitted on CelebA-Spoof only: liveness2 sources scored as fitted, CelebA-Spoof by five-fold cross-validation"
		if multi {
			how = "each source scored by the head refitted on the other eight (sources weighted alike); its threshold read off those eight, each scored by a head fitted on the remaining seven"
		}
		fmt.Printf("head %s (%s, lambda %g; %s)\n\n", head.Name, head.Features, head.Fit.Lambda, how)
		fmt.Println("| source | attacks | live | APCER@0.5 | BPCER@0.5 | ACER@0.5 | threshold | APCER | BPCER | ACER |")
		fmt.Println("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
		var m5, mt [3]float64
		for i, s := range scores {
			a, b := headfit.RatesAt(s, 0.5), headfit.RatesAt(s, ts[i])
			fmt.Printf("| %s | %d | %d | %.3f | %.3f | %.3f | %.2f | %.3f | %.3f | %.3f |\n",
				s.Source, a.Attacks, a.Lives, a.APCER, a.BPCER, a.ACER(), ts[i], b.APCER, b.BPCER, b.ACER())
			n := float64(len(scores))
			m5[0], m5[1], m5[2] = m5[0]+a.APCER/n, m5[1]+a.BPCER/n, m5[2]+a.ACER()/n
			mt[0], mt[1], mt[2] = mt[0]+b.APCER/n, mt[1]+b.BPCER/n, mt[2]+b.ACER()/n
		}
		fmt.Printf("| **mean over %d sources** | | | %.3f | %.3f | **%.3f** | | %.3f | %.3f | **%.3f** |\n",
			len(scores), m5[0], m5[1], m5[2], mt[0], mt[1], mt[2])
		if multi {
			a := headfit.RatesAt(inSource, 0.5)
			fmt.Printf("\n%s in-source (five folds by file: the subset names no people; other sources in every fit): APCER %.3f BPCER %.3f ACER %.3f at 0.5\n",
				inSource.Source, a.APCER, a.BPCER, a.ACER())
		}
		if multi && grid {
			rows, err := headfit.LivenessGrid(samples, head.Features)
			if err != nil {
				return err
			}
			fmt.Printf("\n%s at every penalty, CelebA-Spoof weighed as one source (mean held-out ACER at 0.5 over sources; CelebA-Spoof in-source ACER at 0.5)\n\n", head.Features)
			fmt.Println("| lambda | sources weighted alike | samples weighted alike | CelebA-Spoof in-source |")
			fmt.Println("| --- | --- | --- | --- |")
			for _, r := range rows {
				fmt.Printf("| %g | %.3f | %.3f | %.3f |\n", r.Lambda, r.BySource, r.BySample, r.InCA)
			}
			fmt.Println()
		}
		fmt.Printf("threshold read off all %d sources' held-out scores: %.2f (mean ACER %.3f there)\n\n",
			len(scores), headfit.BestThreshold(scores), headfit.MeanACER(scores, headfit.BestThreshold(scores)))
	}
	return nil
}
