package watchlist

import (
	"fmt"
	"sync"
)

// Index is one list's templates in memory for exact search. Each unit
// vector is kept twice, in contiguous rows: as float32 (the template
// itself) and quantized to int8 with a per-row scale. A search streams the
// int8 rows (a quarter of the bytes, which is what bounds a scan of 100k
// templates), keeps every row whose quantized dot product could reach the
// threshold within the quantization error's bound, and computes the
// distance of those few exactly on the float32 row, so the answer is the
// same as a float32 scan. The distance is facetemplate.Distance's (squared
// L2 between unit vectors), computed as 2 - 2·dot.
//
// Search takes a read lock, Add and Remove the write lock: searches run
// side by side and an enrolment waits for the ones in flight.
type Index struct {
	dim int

	mu      sync.RWMutex
	rows    []float32 // len = dim * len(faces)
	qrows   []int8    // rows quantized: value ≈ qscale[row] * qrows[...]
	qscale  []float32
	qnorm1  []float32 // L1 norm of each float32 row, for the error bound
	faces   []string  // face id of each row
	persons []string  // person id of each row
	byFace  map[string]int
}

// NewIndex returns an empty index of dim-dimensional unit vectors.
func NewIndex(dim int) *Index {
	return &Index{dim: dim, byFace: map[string]int{}}
}

// Dim is the vector dimension.
func (x *Index) Dim() int { return x.dim }

// Len is the number of rows (faces).
func (x *Index) Len() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return len(x.faces)
}

// Bytes is the memory the rows and their ids hold, roughly.
func (x *Index) Bytes() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	n := cap(x.rows)*4 + cap(x.qrows) + cap(x.qscale)*4 + cap(x.qnorm1)*4
	for i := range x.faces {
		// two string headers, their bytes, and the map entry (key, value, overhead)
		n += 2*16 + len(x.faces[i]) + len(x.persons[i]) + 16 + 8 + 16
	}
	return n
}

// Add puts a face's vector in the index (replacing a row with the same face id).
func (x *Index) Add(faceID, personID string, vec []float32) error {
	if len(vec) != x.dim {
		return fmt.Errorf("index: vector has %d values, the list holds %d-dimensional templates", len(vec), x.dim)
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if i, ok := x.byFace[faceID]; ok {
		copy(x.rows[i*x.dim:], vec)
		x.qscale[i], x.qnorm1[i] = quantize(x.qrows[i*x.dim:(i+1)*x.dim], vec)
		x.persons[i] = personID
		return nil
	}
	x.byFace[faceID] = len(x.faces)
	x.rows = append(x.rows, vec...)
	x.qrows = append(x.qrows, make([]int8, x.dim)...)
	sc, n1 := quantize(x.qrows[len(x.qrows)-x.dim:], vec)
	x.qscale = append(x.qscale, sc)
	x.qnorm1 = append(x.qnorm1, n1)
	x.faces = append(x.faces, faceID)
	x.persons = append(x.persons, personID)
	return nil
}

// Remove drops a face's row: the last row moves into its place, so the
// rows stay contiguous.
func (x *Index) Remove(faceID string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.removeLocked(faceID)
}

func (x *Index) removeLocked(faceID string) {
	i, ok := x.byFace[faceID]
	if !ok {
		return
	}
	last := len(x.faces) - 1
	if i != last {
		copy(x.rows[i*x.dim:(i+1)*x.dim], x.rows[last*x.dim:])
		copy(x.qrows[i*x.dim:(i+1)*x.dim], x.qrows[last*x.dim:])
		x.qscale[i], x.qnorm1[i] = x.qscale[last], x.qnorm1[last]
		x.faces[i], x.persons[i] = x.faces[last], x.persons[last]
		x.byFace[x.faces[i]] = i
	}
	clear(x.rows[last*x.dim:]) // a removed template does not linger in memory
	clear(x.qrows[last*x.dim:])
	x.rows, x.qrows = x.rows[:last*x.dim], x.qrows[:last*x.dim]
	x.qscale, x.qnorm1 = x.qscale[:last], x.qnorm1[:last]
	x.faces, x.persons = x.faces[:last], x.persons[:last]
	delete(x.byFace, faceID)
}

// RemovePerson drops every row of a person.
func (x *Index) RemovePerson(personID string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for i := len(x.persons) - 1; i >= 0; i-- {
		if x.persons[i] == personID {
			x.removeLocked(x.faces[i])
		}
	}
}

// scanBlock is how many rows' quantized dot products are computed before
// they are screened: small enough to stay in the L1 cache.
const scanBlock = 512

// Hit is one person found by a search: their closest face.
type Hit struct {
	PersonID string
	FaceID   string
	Distance float64
}

// Search returns up to limit persons whose closest face is within
// maxDistance of q, closest first. q must be a unit vector.
func (x *Index) Search(q []float32, limit int, maxDistance float64) ([]Hit, error) {
	if len(q) != x.dim {
		return nil, fmt.Errorf("index: query has %d values, the list holds %d-dimensional templates", len(q), x.dim)
	}
	if limit <= 0 {
		return nil, nil
	}
	// dot >= minDot  <=>  2 - 2 dot <= maxDistance
	minDot := float32(1 - maxDistance/2)
	x.mu.RLock()
	defer x.mu.RUnlock()
	qq := make([]int16, x.dim)
	qs, qn1 := quantize16(qq, q)
	best := make([]Hit, 0, limit)
	dim := x.dim
	rows, qrows := x.rows, x.qrows
	var idots [scanBlock]int32
	for start, n := 0, len(x.faces); start < n; start += scanBlock {
		block := idots[:min(scanBlock, n-start)]
		dotsInt8(qq, qrows[start*dim:], block)
		for j, id := range block {
			i := start + j
			rs := x.qscale[i]
			// |q·r - approx| <= rs/2 |q|_1 + qs/2 |r|_1 + dim qs rs / 4
			bound := rs/2*qn1 + qs/2*x.qnorm1[i] + float32(dim)*qs*rs/4
			if float32(id)*qs*rs+bound < minDot {
				continue
			}
			d := dot(q, rows[i*dim:(i+1)*dim:(i+1)*dim])
			if d < minDot {
				continue
			}
			best = keep(best, limit, Hit{PersonID: x.persons[i], FaceID: x.faces[i], Distance: float64(2 - 2*d)})
		}
	}
	for i := range best {
		best[i].Distance = max(0, best[i].Distance)
	}
	return best, nil
}

// keep inserts h into best (sorted by distance, one entry per person, at
// most limit long).
func keep(best []Hit, limit int, h Hit) []Hit {
	for i := range best {
		if best[i].PersonID != h.PersonID {
			continue
		}
		if h.Distance >= best[i].Distance {
			return best
		}
		best = append(best[:i], best[i+1:]...)
		break
	}
	if len(best) == limit && h.Distance >= best[len(best)-1].Distance {
		return best
	}
	pos := len(best)
	for pos > 0 && best[pos-1].Distance > h.Distance {
		pos--
	}
	if len(best) < limit {
		best = append(best, Hit{})
	}
	copy(best[pos+1:], best[pos:len(best)-1])
	best[pos] = h
	return best
}

// dot is the inner product of two equally long vectors, with four
// accumulators so that the additions do not wait on each other.
func dot(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+8 <= len(a); i += 8 {
		s0 += a[i]*b[i] + a[i+4]*b[i+4]
		s1 += a[i+1]*b[i+1] + a[i+5]*b[i+5]
		s2 += a[i+2]*b[i+2] + a[i+6]*b[i+6]
		s3 += a[i+3]*b[i+3] + a[i+7]*b[i+7]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// quantize writes v as int8 values (v[i] ≈ scale * dst[i]) and returns the
// scale and v's L1 norm.
func quantize(dst []int8, v []float32) (scale, norm1 float32) {
	var m float32
	for _, x := range v {
		m = max(m, abs32(x))
		norm1 += abs32(x)
	}
	if m == 0 {
		clear(dst)
		return 0, 0
	}
	scale = m / 127
	for i, x := range v {
		dst[i] = int8(roundHalfAway(x / scale))
	}
	return scale, norm1
}

// quantize16 is quantize for the query, on int16 for a finer grid.
func quantize16(dst []int16, v []float32) (scale, norm1 float32) {
	var m float32
	for _, x := range v {
		m = max(m, abs32(x))
		norm1 += abs32(x)
	}
	if m == 0 {
		clear(dst)
		return 0, 0
	}
	scale = m / 32767
	for i, x := range v {
		dst[i] = int16(roundHalfAway(x / scale))
	}
	return scale, norm1
}

func abs32(x float32) float32 {
	if x < 0 {
		return -x
	}
	return x
}

func roundHalfAway(x float32) float32 {
	if x < 0 {
		return float32(int32(x - 0.5))
	}
	return float32(int32(x + 0.5))
}

// dotInt8Go is the portable inner product of the int16 query and an int8
// row; the sum of 192 products of at most 32767*127 fits an int32 with room
// to spare. dotInt8 is it, or an assembly kernel where the CPU has one.
func dotInt8Go(q []int16, r []int8) int32 {
	r = r[:len(q)]
	var s0, s1, s2, s3 int32
	i := 0
	for ; i+8 <= len(q); i += 8 {
		s0 += int32(q[i])*int32(r[i]) + int32(q[i+4])*int32(r[i+4])
		s1 += int32(q[i+1])*int32(r[i+1]) + int32(q[i+5])*int32(r[i+5])
		s2 += int32(q[i+2])*int32(r[i+2]) + int32(q[i+6])*int32(r[i+6])
		s3 += int32(q[i+3])*int32(r[i+3]) + int32(q[i+7])*int32(r[i+7])
	}
	for ; i < len(q); i++ {
		s0 += int32(q[i]) * int32(r[i])
	}
	return (s0 + s1) + (s2 + s3)
}
