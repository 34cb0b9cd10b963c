package watchlist

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"
)

// randomUnit is a synthetic template: a random direction in dim dimensions.
func randomUnit(r *rand.Rand, dim int) []float32 {
	v := make([]float32, dim)
	var n float64
	for i := range v {
		x := r.NormFloat64()
		v[i] = float32(x)
		n += x * x
	}
	k := float32(1 / math.Sqrt(n))
	for i := range v {
		v[i] *= k
	}
	return v
}

func syntheticIndex(b *testing.B, n, dim int) *Index {
	r := rand.New(rand.NewPCG(1, uint64(n)))
	x := NewIndex(dim)
	for i := 0; i < n; i++ {
		if err := x.Add(fmt.Sprintf("f%07d", i), fmt.Sprintf("p%07d", i/2), randomUnit(r, dim)); err != nil {
			b.Fatal(err)
		}
	}
	return x
}

// benchDims are the template dimensions benchmarked: the default network's
// (mobilefacenet+faceplugin, 704) and MobileFaceNet's alone (192).
var benchDims = []int{704, 192}

// BenchmarkSearch is one exact search over n synthetic templates at about
// the default threshold's distance; it reports the index's memory per 100k
// templates. Run on one core:
//
//	go test -run '^$' -bench Search -benchtime 20x -cpu 1 ./watchlist/
func BenchmarkSearch(b *testing.B) {
	for _, dim := range benchDims {
		for _, n := range []int{10_000, 100_000, 1_000_000} {
			b.Run(fmt.Sprintf("dim=%d/n=%d", dim, n), func(b *testing.B) {
				x := syntheticIndex(b, n, dim)
				runtime.GC()
				q := randomUnit(rand.New(rand.NewPCG(7, 7)), dim)
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if _, err := x.Search(q, 5, 1.0); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(x.Bytes())/float64(n)*100_000/(1<<20), "MiB/100k")
			})
		}
	}
}

// BenchmarkSearchFloat32Scan is the baseline: the same search as a plain
// float32 dot-product pass over every row, without the int8 screen.
func BenchmarkSearchFloat32Scan(b *testing.B) {
	for _, dim := range benchDims {
		for _, n := range []int{10_000, 100_000, 1_000_000} {
			b.Run(fmt.Sprintf("dim=%d/n=%d", dim, n), func(b *testing.B) {
				x := syntheticIndex(b, n, dim)
				q := randomUnit(rand.New(rand.NewPCG(7, 7)), dim)
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					best := make([]Hit, 0, 5)
					for r := 0; r < n; r++ {
						if d := dot(q, x.rows[r*dim:(r+1)*dim]); d >= 0.5 {
							best = keep(best, 5, Hit{PersonID: x.persons[r], FaceID: x.faces[r], Distance: float64(2 - 2*d)})
						}
					}
				}
			})
		}
	}
}
