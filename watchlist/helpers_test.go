package watchlist

import (
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
)

func discardLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func faceName(i int) string   { return fmt.Sprintf("f%05d", i) }
func personName(i int) string { return fmt.Sprintf("p%05d", i) }

func abs64(v float64) float64 { return math.Abs(v) }

// perturb adds Gaussian noise of the given size to v and renormalizes.
func perturb(r *rand.Rand, v []float32, noise float64) []float32 {
	out := make([]float32, len(v))
	var n float64
	for i := range v {
		x := float64(v[i]) + noise*r.NormFloat64()/math.Sqrt(float64(len(v)))
		out[i] = float32(x)
		n += x * x
	}
	k := float32(1 / math.Sqrt(n))
	for i := range out {
		out[i] *= k
	}
	return out
}
