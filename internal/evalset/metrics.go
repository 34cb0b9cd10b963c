package evalset

import (
	"math"
	"sort"
)

// IoU is the intersection over union of two boxes given as x1,y1,x2,y2.
func IoU(a, b [4]float64) float64 {
	ix := math.Min(a[2], b[2]) - math.Max(a[0], b[0])
	iy := math.Min(a[3], b[3]) - math.Max(a[1], b[1])
	if ix <= 0 || iy <= 0 {
		return 0
	}
	inter := ix * iy
	union := (a[2]-a[0])*(a[3]-a[1]) + (b[2]-b[0])*(b[3]-b[1]) - inter
	if union <= 0 {
		return 0
	}
	return inter / union
}

// Corners returns a labelled box as x1,y1,x2,y2.
func (b Box) Corners() [4]float64 { return [4]float64{b.X, b.Y, b.X + b.W, b.Y + b.H} }

// Match pairs detections (most confident first) with labelled boxes
// greedily, each detection taking the unmatched label it overlaps most if
// the IoU reaches minIoU, as COCO's evaluation does; it returns the number
// of true positives.
func Match(dets [][4]float64, labels []Box, minIoU float64) int {
	used := make([]bool, len(labels))
	tp := 0
	for _, d := range dets {
		best, bestIoU := -1, minIoU
		for j, l := range labels {
			if used[j] {
				continue
			}
			if v := IoU(d, l.Corners()); v >= bestIoU {
				best, bestIoU = j, v
			}
		}
		if best >= 0 {
			used[best] = true
			tp++
		}
	}
	return tp
}

// Verification holds 1:1 figures over scored pairs, where a smaller
// distance means more alike.
type Verification struct {
	Pairs, Same, Different int
	// BestAccuracy is the accuracy at the best threshold, BestThreshold that threshold.
	BestAccuracy, BestThreshold float64
	// EER is the equal error rate; TARAtFAR1 the true acceptance rate at a 1% false acceptance rate.
	EER, TARAtFAR1 float64
}

// ScoredPair is one pair's distance and truth.
type ScoredPair struct {
	Distance float64
	Same     bool
}

// Verify computes verification figures.
func Verify(pairs []ScoredPair) Verification {
	v := Verification{Pairs: len(pairs)}
	var gen, imp []float64
	for _, p := range pairs {
		if p.Same {
			gen = append(gen, p.Distance)
		} else {
			imp = append(imp, p.Distance)
		}
	}
	v.Same, v.Different = len(gen), len(imp)
	if len(gen) == 0 || len(imp) == 0 {
		return v
	}
	sort.Float64s(gen)
	sort.Float64s(imp)
	// Candidate thresholds: accept when distance <= t.
	ts := append(append([]float64{math.Inf(-1)}, gen...), imp...)
	sort.Float64s(ts)
	v.EER = 1
	bestGap := math.Inf(1)
	for _, t := range ts {
		far := fracAtMost(imp, t)
		frr := 1 - fracAtMost(gen, t)
		acc := float64(len(gen))*(1-frr) + float64(len(imp))*(1-far)
		acc /= float64(len(gen) + len(imp))
		if acc > v.BestAccuracy {
			v.BestAccuracy, v.BestThreshold = acc, t
		}
		if gap := math.Abs(far - frr); gap < bestGap {
			bestGap, v.EER = gap, (far+frr)/2
		}
		if far <= 0.01 {
			v.TARAtFAR1 = math.Max(v.TARAtFAR1, 1-frr)
		}
	}
	return v
}

// AccuracyAt is the accuracy when pairs with distance <= t are accepted.
func AccuracyAt(pairs []ScoredPair, t float64) float64 {
	if len(pairs) == 0 {
		return 0
	}
	ok := 0
	for _, p := range pairs {
		if (p.Distance <= t) == p.Same {
			ok++
		}
	}
	return float64(ok) / float64(len(pairs))
}

// fracAtMost is the fraction of sorted xs that are <= t.
func fracAtMost(xs []float64, t float64) float64 {
	return float64(sort.Search(len(xs), func(i int) bool { return xs[i] > t })) / float64(len(xs))
}
