package main

import (
	"context"
	"fmt"
	"math"
	"path/filepath"

	"imageapid/estimators/attributes"
	"imageapid/fitting/headfit"
	"imageapid/sessions"
)

// Session passive threshold. The session head ranks live above attack
// within most sources, but its level moves with the camera: fitted without
// a source, that source's live photos fuse (mean log-odds, as a session
// fuses its frames) anywhere from 0.22 to 0.75. A hard check at 0.5 fails
// whole cameras of live people, so the sessions hold passive liveness to a
// threshold no held-out source's live people fall below, and leave the
// attacks it cannot see to the challenges, the device, bezel, motion and
// continuity checks.
const (
	// thresholdStep is the grid the threshold is read off.
	thresholdStep = 0.05
	// maxPhotoBPCER bounds the mean per-source share of live photos, each
	// judged alone, under the threshold.
	maxPhotoBPCER = 0.05
)

// passiveThreshold prints, per source held out, the session head's fused
// probability over its live and its attack photos, and the highest
// threshold on the grid under every source's fused live probability whose
// mean per-photo BPCER stays within maxPhotoBPCER: the sessions'
// passive_threshold.
func passiveThreshold(ctx context.Context, corpusDir, headsDir, modelDir, cache string) error {
	head, err := attributes.LoadHeadFile(filepath.Join(headsDir, attributes.SessionLivenessHead+".json"))
	if err != nil {
		return err
	}
	samples, err := livenessSamples(ctx, corpusDir, modelDir, cache)
	if err != nil {
		return err
	}
	scores, err := headfit.SessionLivenessHeldOut(samples, head)
	if err != nil {
		return err
	}
	fmt.Printf("head %s (%s, lambda %g), each source scored by the head fitted on the others\n\n",
		head.Name, head.Features, head.Fit.Lambda)
	fmt.Println("| source | live photos | live fused p | attack photos | attack fused p |")
	fmt.Println("| --- | --- | --- | --- | --- |")
	lowestLive := 1.0
	for _, s := range scores {
		live, attack := byLabel(s)
		fl, fa := sessions.FusePassive(live), sessions.FusePassive(attack)
		lowestLive = math.Min(lowestLive, fl)
		fmt.Printf("| %s | %d | %.3f | %d | %.3f |\n", s.Source, len(live), fl, len(attack), fa)
	}
	fmt.Println("\n| threshold | mean BPCER (photos) | worst source BPCER | mean APCER (photos) | attack sources caught (fused) |")
	fmt.Println("| --- | --- | --- | --- | --- |")
	chosen := 0.0
	for k := 1; float64(k)*thresholdStep < 1; k++ {
		t := float64(k) * thresholdStep
		var bpcer, apcer, worst float64
		caught := 0
		for _, s := range scores {
			live, attack := byLabel(s)
			b, a := below(live, t), 1-below(attack, t)
			bpcer += b / float64(len(scores))
			apcer += a / float64(len(scores))
			worst = math.Max(worst, b)
			if len(attack) > 0 && sessions.FusePassive(attack) < t {
				caught++
			}
		}
		fmt.Printf("| %.2f | %.3f | %.2f | %.3f | %d of %d |\n", t, bpcer, worst, apcer, caught, len(scores))
		if t < lowestLive && bpcer <= maxPhotoBPCER {
			chosen = t
		}
	}
	fmt.Printf("\npassive_threshold: %.2f (under every held-out source's fused live p, lowest %.3f; mean photo BPCER <= %.2f)\n",
		chosen, lowestLive, maxPhotoBPCER)
	return nil
}

func byLabel(s headfit.SourceScores) (live, attack []float64) {
	for i, p := range s.Probability {
		if s.Real[i] {
			live = append(live, p)
		} else {
			attack = append(attack, p)
		}
	}
	return live, attack
}

// below is the share of ps under t.
func below(ps []float64, t float64) float64 {
	if len(ps) == 0 {
		return 0
	}
	n := 0
	for _, p := range ps {
		if p < t {
			n++
		}
	}
	return float64(n) / float64(len(ps))
}

// livenessSamples are the features of every corpus liveness source's
// photos, extracted as the committed heads were fitted.
func livenessSamples(ctx context.Context, corpusDir, modelDir, cache string) ([]headfit.Extracted, error) {
	e, err := openExtraction(modelDir)
	if err != nil {
		return nil, err
	}
	defer e.Close()
	return extractCached(ctx, e.p, e.x, corpusDir, livenessSources, cacheDir(cache, e.manifest))
}
