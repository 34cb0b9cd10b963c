// Package assign solves the linear assignment problem: pair rows with
// columns of a cost matrix so that the summed cost is least (the Hungarian
// method). The tracker pairs tracks with detections with it, and the MOT
// metrics pair ground-truth identities with tracker identities.
package assign

import "math"

// Forbidden marks a pair that may not be matched.
var Forbidden = math.Inf(1)

// Min pairs rows with columns of cost (n rows of m columns each) at least
// summed cost, skipping pairs whose cost is Forbidden. It returns, for each
// row, its column or -1 when the row is left unmatched.
func Min(cost [][]float64) []int {
	n := len(cost)
	if n == 0 {
		return nil
	}
	m := len(cost[0])
	rowCol := make([]int, n)
	for i := range rowCol {
		rowCol[i] = -1
	}
	if m == 0 {
		return rowCol
	}
	// Pad to a square k x k matrix; a forbidden or padded pair costs more
	// than every allowed pairing together, so it is taken only when nothing
	// else is left, and then reported as unmatched.
	k := max(n, m)
	big := 1.0
	for _, row := range cost {
		for _, c := range row {
			if !math.IsInf(c, 1) {
				big += math.Abs(c)
			}
		}
	}
	at := func(i, j int) float64 {
		if i >= n || j >= m || math.IsInf(cost[i][j], 1) {
			return big
		}
		return cost[i][j]
	}
	// Shortest augmenting paths with potentials; indices are 1-based with 0
	// as the virtual start column.
	u := make([]float64, k+1)
	v := make([]float64, k+1)
	p := make([]int, k+1) // p[j]: the row matched to column j
	way := make([]int, k+1)
	minv := make([]float64, k+1)
	used := make([]bool, k+1)
	for i := 1; i <= k; i++ {
		p[0] = i
		j0 := 0
		for j := range minv {
			minv[j] = math.Inf(1)
			used[j] = false
		}
		for {
			used[j0] = true
			i0, delta, j1 := p[j0], math.Inf(1), 0
			for j := 1; j <= k; j++ {
				if used[j] {
					continue
				}
				cur := at(i0-1, j-1) - u[i0] - v[j]
				if cur < minv[j] {
					minv[j], way[j] = cur, j0
				}
				if minv[j] < delta {
					delta, j1 = minv[j], j
				}
			}
			for j := 0; j <= k; j++ {
				if used[j] {
					u[p[j]] += delta
					v[j] -= delta
				} else {
					minv[j] -= delta
				}
			}
			j0 = j1
			if p[j0] == 0 {
				break
			}
		}
		for j0 != 0 {
			j1 := way[j0]
			p[j0] = p[j1]
			j0 = j1
		}
	}
	for j := 1; j <= k; j++ {
		i := p[j] - 1
		if i < n && j-1 < m && !math.IsInf(cost[i][j-1], 1) {
			rowCol[i] = j - 1
		}
	}
	return rowCol
}
