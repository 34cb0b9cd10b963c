package watchlist

import "golang.org/x/sys/cpu"

// hasAVX2 picks the assembly kernels; it is a property of the CPU, fixed
// for the life of the process.
var hasAVX2 = cpu.X86.HasAVX2

//go:noescape
func dotInt8AVX2(q *int16, r *int8, n int) int32

//go:noescape
func dotsInt8AVX2(q *int16, rows *int8, dim, nrows int, out *int32)

// dotInt8 is the inner product of the int16 query and an int8 row.
func dotInt8(q []int16, r []int8) int32 {
	r = r[:len(q)]
	n := len(q) &^ 15
	if !hasAVX2 || n == 0 {
		return dotInt8Go(q, r)
	}
	s := dotInt8AVX2(&q[0], &r[0], n)
	if n < len(q) {
		s += dotInt8Go(q[n:], r[n:])
	}
	return s
}

// dotsInt8 fills out[i] with the inner product of q and row i of rows
// (len(out) rows of len(q) values).
func dotsInt8(q []int16, rows []int8, out []int32) {
	dim := len(q)
	rows = rows[:dim*len(out)]
	if hasAVX2 && dim%16 == 0 && dim > 0 && len(out) > 0 {
		dotsInt8AVX2(&q[0], &rows[0], dim, len(out), &out[0])
		return
	}
	for i := range out {
		out[i] = dotInt8(q, rows[i*dim:(i+1)*dim])
	}
}
