package headfit

import (
	"context"
	"fmt"
	"math"
	"strings"

	"imageapid/estimators/attributes"
	"imageapid/fitting/corpus"
)

// Seed is the fixed seed of the held-back split.
const Seed uint64 = 20240601

// Data descriptions recorded in the heads.
const (
	maskData    = "../shared/corpus/mask (with_mask/, without_mask/; chandrikadeb7/Face-Mask-Detection as listed in the corpus manifest)"
	maskLicence = "MIT repository licence; no licence stated for the photos (internal use)"
	utkData     = "../shared/corpus/ages (UTKFace aligned crops)"
	utkLicence  = "UTKFace: non-commercial research use only; this head may not be used commercially"
	emoData     = "../shared/corpus/faces (muxspace/facial_expressions crowd emotion labels)"
	emoLicence  = "Apache-2.0 repository licence; no licence stated for the photos (internal use)"
)

// lambdas are tried strongest first, so a tie keeps the simpler model.
var lambdas = []float64{10000, 1000, 100, 10, 1, 0.1, 0.01}

type labelled struct {
	x       [][]float32
	heldout []bool
	fold    []int
	group   []string
	skipped int
}

func collect(samples []Extracted, set string, keep func(*corpus.CorpusFile) bool) (labelled, []int) {
	var l labelled
	var idx []int
	for i := range samples {
		s := &samples[i]
		if !keep(&s.File) {
			continue
		}
		if s.Features == nil {
			l.skipped++
			continue
		}
		x, err := s.Features.Vector(context.Background(), set, nil)
		if err != nil {
			l.skipped++
			continue
		}
		l.x = append(l.x, x)
		// Files of one person stay on one side of the split, so that a head
		// cannot score by recognizing people.
		key := s.File.Path
		if s.File.Labels.Identity != "" {
			key = "identity:" + s.File.Labels.Identity
		}
		l.fold = append(l.fold, Fold(key, Seed))
		l.group = append(l.group, s.File.Group)
		l.heldout = append(l.heldout, l.fold[len(l.fold)-1] == 0)
		idx = append(idx, i)
	}
	return l, idx
}

func split[T any](v []T, held []bool) (train, test []T) {
	for i := range v {
		if held[i] {
			test = append(test, v[i])
		} else {
			train = append(train, v[i])
		}
	}
	return
}

// foldSplit parts the samples and their labels into the training folds and
// fold k.
func foldSplit[T any](l labelled, y []T, k int) (xtr [][]float32, ytr []T, xte [][]float32, yte []T) {
	for i := range l.x {
		if l.fold[i] == k {
			xte, yte = append(xte, l.x[i]), append(yte, y[i])
		} else {
			xtr, ytr = append(xtr, l.x[i]), append(ytr, y[i])
		}
	}
	return xtr, ytr, xte, yte
}

func counts(held []bool) (train, test int) {
	for _, h := range held {
		if h {
			test++
		} else {
			train++
		}
	}
	return
}

// binarySelection is how trainBinary chooses a feature set and penalty:
// score rates a fit of one set's samples at one lambda.
type binarySelection struct {
	metric         string
	higherIsBetter bool
	score          func(l labelled, y []bool, lambda float64) (float64, error)
	// weights are the samples' weights in the final fit (nil: balance).
	weights func(l labelled, y []bool) []float64
}

// heldoutAccuracy scores a fit on the training split by its accuracy on the
// held-out split.
var heldoutAccuracy = binarySelection{
	metric:         "held-out accuracy (feature set and lambda chosen on it, then refitted on all samples)",
	higherIsBetter: true,
	score: func(l labelled, y []bool, lam float64) (float64, error) {
		xtr, xte := split(l.x, l.heldout)
		ytr, yte := split(y, l.heldout)
		h, err := fitBinary(xtr, ytr, lam)
		if err != nil {
			return 0, err
		}
		var ok float64
		for i, x := range xte {
			if (h.Eval(x)[0] >= 0.5) == yte[i] {
				ok++
			}
		}
		return ok / float64(len(xte)), nil
	},
}

// foldACER scores by the ACER at 0.5 (the mean of the error rates on the
// negative and the positive class) over five folds.
var foldACER = binarySelection{
	metric: "ACER at 0.5 over five folds (feature set and lambda chosen on it, then refitted on all samples)",
	score: func(l labelled, y []bool, lam float64) (float64, error) {
		var errs, total [2]float64 // [negative, positive]
		for k := 0; k < 5; k++ {
			xtr, ytr, xte, yte := foldSplit(l, y, k)
			h, err := fitBinary(xtr, ytr, lam)
			if err != nil {
				return 0, err
			}
			countErrors(h, xte, yte, &errs, &total)
		}
		return (errs[0]/math.Max(1, total[0]) + errs[1]/math.Max(1, total[1])) / 2, nil
	},
}

// sourceACER scores by the mean over sources of the ACER at 0.5 on each
// source when the head is fitted on all the others (leave-one-source-out):
// what a head does on a camera and attack set-up it has never seen. Each
// source weighs the same in every fit (balanceBySource): weighting samples
// alike let the two largest sources set the head (0.319 against 0.241).
var sourceACER = binarySelection{
	metric:  "mean ACER at 0.5 over sources, each held out in turn, sources weighted alike (feature set and lambda chosen on it, then refitted on all samples)",
	weights: func(l labelled, y []bool) []float64 { return balanceBySource(y, l.group) },
	score: func(l labelled, y []bool, lam float64) (float64, error) {
		held, err := heldOutBySource(l, y, lam)
		if err != nil {
			return 0, err
		}
		var sum float64
		for _, g := range held {
			var errs, total [2]float64 // [negative, positive]
			tallyErrors(g.Probability, g.Real, &errs, &total)
			// A source with one class only is scored on that class.
			switch {
			case total[0] == 0:
				sum += errs[1] / total[1]
			case total[1] == 0:
				sum += errs[0] / total[0]
			default:
				sum += (errs[0]/total[0] + errs[1]/total[1]) / 2
			}
		}
		return sum / float64(len(held)), nil
	},
}

// SourceScores are one source's samples scored by a head fitted on every
// other source: each sample's probability of the positive class and its label.
type SourceScores struct {
	Source      string
	Probability []float64
	Real        []bool
}

// heldOutBySource fits a logistic head at lam on all sources but one, in
// turn (sources weighted alike), and scores the one left out; sources come
// in the order they first appear.
func heldOutBySource(l labelled, y []bool, lam float64) ([]SourceScores, error) {
	return heldOutWeighted(l, y, lam, balanceBySource)
}

// heldOutWeighted is heldOutBySource with the training samples weighted by
// weigh (of their labels and sources).
func heldOutWeighted(l labelled, y []bool, lam float64, weigh func(y []bool, groups []string) []float64) ([]SourceScores, error) {
	var groups []string
	seen := map[string]bool{}
	for _, g := range l.group {
		if !seen[g] {
			seen[g] = true
			groups = append(groups, g)
		}
	}
	if len(groups) < 2 {
		return nil, fmt.Errorf("leave-one-source-out needs two sources, have %d", len(groups))
	}
	out := make([]SourceScores, 0, len(groups))
	for _, g := range groups {
		held := make([]bool, len(l.group))
		for i := range held {
			held[i] = l.group[i] == g
		}
		xtr, xte := split(l.x, held)
		ytr, yte := split(y, held)
		gtr, _ := split(l.group, held)
		W, B, _, err := FitLogistic(xtr, ytr, weigh(ytr, gtr), lam)
		if err != nil {
			return nil, err
		}
		h := &attributes.Head{Kind: attributes.KindLogistic, Weights: W, Bias: B}
		s := SourceScores{Source: g, Real: yte}
		for _, x := range xte {
			s.Probability = append(s.Probability, h.Eval(x)[0])
		}
		out = append(out, s)
	}
	return out, nil
}

// SessionLivenessHeldOut scores every liveness sample with the session
// head's feature set and penalty (as head records them) fitted without the
// sample's source: what the head does on a camera it has never seen.
func SessionLivenessHeldOut(samples []Extracted, head *attributes.Head) ([]SourceScores, error) {
	l, idx := collect(samples, head.Features, func(f *corpus.CorpusFile) bool { return f.Labels.Liveness != "" })
	y := make([]bool, len(idx))
	for i, k := range idx {
		y[i] = samples[k].File.Labels.Liveness == "REAL"
	}
	return heldOutBySource(l, y, head.Fit.Lambda)
}

// countErrors adds, per class ([negative, positive]), the samples and the
// ones h gets wrong at 0.5.
func countErrors(h *attributes.Head, x [][]float32, y []bool, errs, total *[2]float64) {
	p := make([]float64, len(x))
	for i, v := range x {
		p[i] = h.Eval(v)[0]
	}
	tallyErrors(p, y, errs, total)
}

// tallyErrors adds, per class, the samples and the ones whose probability
// p of the positive class is on the wrong side of 0.5.
func tallyErrors(p []float64, y []bool, errs, total *[2]float64) {
	for i := range p {
		c := 0
		if y[i] {
			c = 1
		}
		total[c]++
		if (p[i] >= 0.5) != y[i] {
			errs[c]++
		}
	}
}

func fitBinary(x [][]float32, y []bool, lam float64) (*attributes.Head, error) {
	W, B, _, err := FitLogistic(x, y, balance(y), lam)
	if err != nil {
		return nil, err
	}
	return &attributes.Head{Kind: attributes.KindLogistic, Weights: W, Bias: B}, nil
}

// trainBinary selects the feature set and lambda as sel says and refits on
// all samples.
func trainBinary(name string, sets []string, lambdas []float64, sel binarySelection, positive string, samples []Extracted,
	keep func(*corpus.CorpusFile) bool, label func(*corpus.CorpusFile) bool, data, licence string) (*attributes.Head, error) {
	labels := func(idx []int) []bool {
		y := make([]bool, len(idx))
		for i, k := range idx {
			y[i] = label(&samples[k].File)
		}
		return y
	}
	sign := -1.0
	if sel.higherIsBetter {
		sign = 1
	}
	best, bestL, bestSet := math.Inf(-1), 0.0, ""
	for _, set := range sets {
		l, idx := collect(samples, set, keep)
		if len(l.x) < 20 {
			return nil, fmt.Errorf("head %s: only %d samples", name, len(l.x))
		}
		y := labels(idx)
		for _, lam := range lambdas {
			v, err := sel.score(l, y, lam)
			if err != nil {
				return nil, err
			}
			if sign*v > best+1e-12 {
				best, bestL, bestSet = sign*v, lam, set
			}
		}
	}
	l, idx := collect(samples, bestSet, keep)
	y := labels(idx)
	weights := balance(y)
	if sel.weights != nil {
		weights = sel.weights(l, y)
	}
	W, B, mean, err := FitLogistic(l.x, y, weights, bestL)
	if err != nil {
		return nil, err
	}
	tr, te := counts(l.heldout)
	return &attributes.Head{
		Name: name, Kind: attributes.KindLogistic, Features: bestSet, Labels: []string{positive}, Inputs: len(l.x[0]),
		Weights: W, Bias: B, Mean: mean,
		Fit: attributes.FitReport{Data: data, Licence: licence, Seed: Seed, Lambda: bestL, Train: tr, Heldout: te, Skipped: l.skipped,
			Metric: sel.metric, Value: round4(sign * best), Notes: "feature sets tried: " + strings.Join(sets, ", ")},
	}, nil
}

// balanceBySource gives each source the same total weight, split evenly
// between its classes, so that the largest sources do not set the head.
func balanceBySource(y []bool, groups []string) []float64 {
	type key struct {
		g string
		c bool
	}
	n := map[key]float64{}
	classes := map[string]float64{}
	for i, v := range y {
		k := key{groups[i], v}
		if n[k] == 0 {
			classes[groups[i]]++
		}
		n[k]++
	}
	w := make([]float64, len(y))
	total := float64(len(y)) / float64(len(classes))
	for i, v := range y {
		w[i] = total / (classes[groups[i]] * n[key{groups[i], v}])
	}
	return w
}

// balance gives each class the same total weight.
func balance(y []bool) []float64 {
	var pos float64
	for _, v := range y {
		if v {
			pos++
		}
	}
	neg := float64(len(y)) - pos
	w := make([]float64, len(y))
	for i, v := range y {
		if v {
			w[i] = float64(len(y)) / (2 * pos)
		} else {
			w[i] = float64(len(y)) / (2 * neg)
		}
	}
	return w
}

// TrainMask fits the mask head: logistic regression on the embedding.
func TrainMask(samples []Extracted) (*attributes.Head, error) {
	return trainBinary("mask", []string{attributes.FeatEmbedding}, lambdas, heldoutAccuracy, "mask", samples,
		func(f *corpus.CorpusFile) bool { return f.Labels.Mask != nil },
		func(f *corpus.CorpusFile) bool { return *f.Labels.Mask }, maskData, maskLicence)
}

// AgeSets are the feature sets tried for the age head: FaceRes's and
// face-api's own estimates, alone or together, with the MobileFace
// embedding and the face's shape (mesh geometry), and the embedding alone.
var AgeSets = []string{"faceres", "faceres+geometry", "mobileface+faceres", "mobileface+geometry+faceres", "mobileface+geometry",
	"faceapi", "faceapi+faceres", "faceapi+faceres+geometry", "mobileface+geometry+faceres+faceapi"}

// GenderSets are the feature sets tried for the gender head: those of the
// age head and the FaceRes descriptor.
var GenderSets = []string{"faceres", "mobileface+geometry+faceres", "faceresdesc+faceres", "mobileface+geometry+faceresdesc+faceres", "mobileface+geometry",
	"faceapi", "faceapi+faceres", "mobileface+geometry+faceres+faceapi", "mobileface+geometry+faceresdesc+faceres+faceapi"}

// genderLambdas leave out the weak penalties, which only overfit the
// descriptor's thousand dimensions (and take long to fit).
var genderLambdas = []float64{10000, 3000, 1000, 300, 100, 10}

// TrainGender fits the gender head (probability of FEMALE) on UTKFace.
func TrainGender(samples []Extracted) (*attributes.Head, error) {
	return trainBinary("gender", GenderSets, genderLambdas, heldoutAccuracy, "FEMALE", samples,
		func(f *corpus.CorpusFile) bool { return f.Labels.Gender != "" },
		func(f *corpus.CorpusFile) bool { return strings.EqualFold(f.Labels.Gender, "female") }, utkData, utkLicence)
}

// ageBand groups ages by decade (60 and over together).
func ageBand(age float64) int { return int(math.Min(6, age/10)) }

// ageWeights give every decade the same total weight, so that the head
// serves all ages alike instead of regressing to the corpus's prevalent
// twenties and thirties.
func ageWeights(ages []float64) []float64 {
	n := map[int]float64{}
	for _, a := range ages {
		n[ageBand(a)]++
	}
	w := make([]float64, len(ages))
	for i, a := range ages {
		w[i] = float64(len(ages)) / (float64(len(n)) * n[ageBand(a)])
	}
	return w
}

// balancedMAE is the mean over decades of the mean absolute error.
func balancedMAE(pred, ages []float64) float64 {
	sum, n := map[int]float64{}, map[int]float64{}
	for i, a := range ages {
		sum[ageBand(a)] += math.Abs(pred[i] - a)
		n[ageBand(a)]++
	}
	var total float64
	for b := range n {
		total += sum[b] / n[b]
	}
	return total / float64(len(n))
}

// TrainAge fits the age head: ridge regression of log(1+age) on the
// feature set that does best on the held-out split, with decades weighted
// alike in the fit and in the selection (decade-balanced MAE).
func TrainAge(samples []Extracted) (*attributes.Head, error) {
	keep := func(f *corpus.CorpusFile) bool { return f.Labels.Age != nil }
	bestMAE, bestL, bestSet, bestTarget := math.Inf(1), 0.0, "", ""
	for _, target := range []string{attributes.TargetLogAge, attributes.TargetAge} {
		for _, set := range AgeSets {
			l, idx := collect(samples, set, keep)
			if len(l.x) < 20 {
				return nil, fmt.Errorf("head age: only %d samples", len(l.x))
			}
			y := make([]float64, len(idx))
			ages := make([]float64, len(idx))
			for i, k := range idx {
				ages[i] = float64(*samples[k].File.Labels.Age)
				y[i] = attributes.AgeTransform(target, ages[i])
			}
			xtr, xte := split(l.x, l.heldout)
			ytr, _ := split(y, l.heldout)
			atr, ate := split(ages, l.heldout)
			for _, lam := range lambdas {
				W, B, _, err := FitRidge(xtr, ytr, ageWeights(atr), lam)
				if err != nil {
					return nil, err
				}
				h := &attributes.Head{Kind: attributes.KindLinear, Weights: W, Bias: B}
				pred := make([]float64, len(xte))
				for i, x := range xte {
					pred[i] = attributes.AgeFromTarget(target, h.Eval(x)[0])
				}
				mae := balancedMAE(pred, ate)
				if mae < bestMAE-1e-12 {
					bestMAE, bestL, bestSet, bestTarget = mae, lam, set, target
				}
			}
		}
	}
	l, idx := collect(samples, bestSet, keep)
	y := make([]float64, len(idx))
	ages := make([]float64, len(idx))
	for i, k := range idx {
		ages[i] = float64(*samples[k].File.Labels.Age)
		y[i] = attributes.AgeTransform(bestTarget, ages[i])
	}
	W, B, mean, err := FitRidge(l.x, y, ageWeights(ages), bestL)
	if err != nil {
		return nil, err
	}
	tr, te := counts(l.heldout)
	return &attributes.Head{
		Name: "age", Kind: attributes.KindLinear, Features: bestSet, Labels: []string{bestTarget}, Inputs: len(l.x[0]),
		Weights: W, Bias: B, Mean: mean,
		Fit: attributes.FitReport{Data: utkData, Licence: utkLicence, Seed: Seed, Lambda: bestL, Train: tr, Heldout: te, Skipped: l.skipped,
			Metric: "held-out decade-balanced MAE in years (feature set and lambda chosen on it, then refitted on all samples)", Value: round4(bestMAE),
			Notes: "feature sets tried: " + strings.Join(AgeSets, ", ")},
	}, nil
}

// EmotionSets are the feature sets tried for the emotion head.
var EmotionSets = []string{"geometry+emotionnet", "mobileface+geometry+emotionnet", "mobileface+geometry"}

// TrainEmotion fits the emotion head: softmax regression on the feature set
// (embedding, mesh geometry, the compiled emotion network's outputs) and
// penalty with the best balanced accuracy (the mean of the per-class
// recalls) over five people-disjoint folds. Classes are weighted to equal
// totals: the corpus has a handful of disgusted and scared faces, and a
// service must not learn that they are rare.
func TrainEmotion(samples []Extracted) (*attributes.Head, error) {
	index := map[string]int{}
	for i, e := range attributes.Emotions {
		index[e] = i
	}
	keep := func(f *corpus.CorpusFile) bool {
		_, ok := index[strings.ToUpper(f.Labels.Emotion)]
		return ok
	}
	weights := func(y []int) []float64 {
		n := make([]float64, len(attributes.Emotions))
		for _, c := range y {
			n[c]++
		}
		w := make([]float64, len(y))
		for i, c := range y {
			w[i] = math.Min(25, float64(len(y))/(float64(len(attributes.Emotions))*n[c]))
		}
		return w
	}
	labels := func(idx []int) []int {
		y := make([]int, len(idx))
		for i, k := range idx {
			y[i] = index[strings.ToUpper(samples[k].File.Labels.Emotion)]
		}
		return y
	}
	bestAcc, bestL, bestSet := -1.0, 0.0, ""
	for _, set := range EmotionSets {
		l, idx := collect(samples, set, keep)
		if len(l.x) < 20 {
			return nil, fmt.Errorf("head emotion: only %d samples", len(l.x))
		}
		y := labels(idx)
		for _, lam := range []float64{1, 0.1, 0.03, 0.01} {
			hits := make([]float64, len(attributes.Emotions))
			total := make([]float64, len(attributes.Emotions))
			for k := 0; k < 5; k++ {
				xtr, ytr, xte, yte := foldSplit(l, y, k)
				W, B, _, err := FitSoftmax(xtr, ytr, len(attributes.Emotions), weights(ytr), lam)
				if err != nil {
					return nil, err
				}
				h := &attributes.Head{Kind: attributes.KindSoftmax, Weights: W, Bias: B}
				for i, x := range xte {
					total[yte[i]]++
					if argmax(h.Eval(x)) == yte[i] {
						hits[yte[i]]++
					}
				}
			}
			var acc float64
			for c := range hits {
				acc += hits[c] / math.Max(1, total[c])
			}
			if acc /= float64(len(hits)); acc > bestAcc+1e-12 {
				bestAcc, bestL, bestSet = acc, lam, set
			}
		}
	}
	l, idx := collect(samples, bestSet, keep)
	y := labels(idx)
	W, B, mean, err := FitSoftmax(l.x, y, len(attributes.Emotions), weights(y), bestL)
	if err != nil {
		return nil, err
	}
	tr, te := counts(l.heldout)
	return &attributes.Head{
		Name: "emotion", Kind: attributes.KindSoftmax, Features: bestSet, Labels: attributes.Emotions, Inputs: len(l.x[0]),
		Weights: W, Bias: B, Mean: mean,
		Fit: attributes.FitReport{Data: emoData, Licence: emoLicence, Seed: Seed, Lambda: bestL, Train: tr, Heldout: te, Skipped: l.skipped,
			Metric: "7-class balanced accuracy over five people-disjoint folds (feature set and lambda chosen on it, then refitted on all samples)",
			Value:  round4(bestAcc), Notes: "feature sets tried: " + strings.Join(EmotionSets, ", ")},
	}, nil
}

func argmax(v []float64) int {
	best := 0
	for i := range v {
		if v[i] > v[best] {
			best = i
		}
	}
	return best
}

func round4(v float64) float64 { return math.Round(v*1e4) / 1e4 }

const (
	livenessData    = "../shared/corpus/liveness (real/, fake/: CelebA-Spoof subset from ReynaraEzra/Liveness-Detection)"
	livenessLicence = "CelebA-Spoof: non-commercial research use only; this head may not be used commercially"
)

const (
	livenessSourcesData = "../shared/corpus/liveness (CelebA-Spoof subset, one source) and ../shared/corpus/liveness2 (eight sources: NUAA and seven projects' webcam and phone recordings)"
	livenessSourcesLic  = "CelebA-Spoof: non-commercial research use only; liveness2: no licence stated by its sources (internal use); this head may not be used commercially"
)

// TrainSessionLiveness fits the kiosk sessions' passive head on every
// liveness source, choosing the feature set and penalty by the mean ACER on
// each source held out in turn: a kiosk's camera and its attackers' screens
// are never those of the corpus.
func TrainSessionLiveness(name string, sets ...string) func([]Extracted) (*attributes.Head, error) {
	return func(samples []Extracted) (*attributes.Head, error) {
		return trainBinary(name, sets, lambdas, sourceACER, "REAL", samples,
			func(f *corpus.CorpusFile) bool { return f.Labels.Liveness != "" },
			func(f *corpus.CorpusFile) bool { return f.Labels.Liveness == "REAL" }, livenessSourcesData, livenessSourcesLic)
	}
}

// TrainLiveness fits a liveness head (probability that the face is REAL):
// the feature set and penalty with the lowest ACER over five folds, for the
// liveness corpus is too small for one held-out split to choose by.
func TrainLiveness(name string, sets ...string) func([]Extracted) (*attributes.Head, error) {
	return func(samples []Extracted) (*attributes.Head, error) {
		return trainBinary(name, sets, lambdas, foldACER, "REAL", samples,
			func(f *corpus.CorpusFile) bool { return f.Labels.Liveness != "" },
			func(f *corpus.CorpusFile) bool { return f.Labels.Liveness == "REAL" }, livenessData, livenessLicence)
	}
}
