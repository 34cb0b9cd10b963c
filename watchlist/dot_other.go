//go:build !amd64

package watchlist

// dotInt8 is the inner product of the int16 query and an int8 row.
func dotInt8(q []int16, r []int8) int32 { return dotInt8Go(q, r) }

// dotsInt8 fills out[i] with the inner product of q and row i of rows.
func dotsInt8(q []int16, rows []int8, out []int32) {
	dim := len(q)
	for i := range out {
		out[i] = dotInt8Go(q, rows[i*dim:(i+1)*dim])
	}
}
