package assign

import (
	"slices"
	"testing"
)

func TestMin(t *testing.T) {
	f := Forbidden
	cases := []struct {
		name string
		cost [][]float64
		want []int
	}{
		{"empty", nil, nil},
		{"no columns", [][]float64{{}, {}}, []int{-1, -1}},
		// Greedy would take (0,0)=1 then (1,1)=10: 11; the optimum is 2+3=5.
		{"greedy loses", [][]float64{{1, 2}, {3, 10}}, []int{1, 0}},
		{"more rows", [][]float64{{5}, {1}, {3}}, []int{-1, 0, -1}},
		{"more columns", [][]float64{{4, 1, 4}, {2, 0, 5}}, []int{1, 0}},
		{"forbidden left unmatched", [][]float64{{f, f}, {1, f}}, []int{-1, 0}},
		{"forbidden forces the other", [][]float64{{1, 2}, {f, 9}}, []int{0, 1}},
		{"3x3", [][]float64{{4, 1, 3}, {2, 0, 5}, {3, 2, 2}}, []int{1, 0, 2}},
	}
	for _, c := range cases {
		if got := Min(c.cost); !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}
