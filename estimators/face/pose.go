package face

import "math"

// headPose fits the canonical face to the mesh with a weighted similarity
// Procrustes fit (Horn's quaternion method) over MediaPipe's Procrustes
// landmarks and returns the rotation as yaw, pitch and roll in degrees.
//
// Frames: the mesh is in image pixels (x right, y down, z away from the
// camera, as the landmark network gives it); it is turned into x right,
// y up, z towards the camera, the canonical face's frame, so the fit is a
// proper rotation. The rotation is decomposed as R = Ry(yaw) Rx(-pitch) Rz(-roll):
//   - yaw > 0: the subject turns to their left (the nose points to the image right);
//   - pitch > 0: the subject looks up;
//   - roll > 0: the face is turned clockwise in the image (the image-right eye lower).
//
// Under orthographic projection a mirrored image flips yaw and roll and keeps pitch.
func headPose(cf *canonicalFace, mesh [][3]float64) (yaw, pitch, roll float64) {
	var ca, cb [3]float64
	var wsum float64
	for _, l := range cf.basis {
		a := cf.vertices[l.index]
		b := meshUp(mesh[l.index])
		for k := 0; k < 3; k++ {
			ca[k] += l.weight * a[k]
			cb[k] += l.weight * b[k]
		}
		wsum += l.weight
	}
	for k := 0; k < 3; k++ {
		ca[k] /= wsum
		cb[k] /= wsum
	}
	var S [3][3]float64 // S[i][j] = sum w (a_i - ca_i)(b_j - cb_j)
	for _, l := range cf.basis {
		a := cf.vertices[l.index]
		b := meshUp(mesh[l.index])
		for i := 0; i < 3; i++ {
			for j := 0; j < 3; j++ {
				S[i][j] += l.weight * (a[i] - ca[i]) * (b[j] - cb[j])
			}
		}
	}
	return anglesOf(hornRotation(S))
}

// anglesOf decomposes R = Ry(yaw) Rx(-pitch) Rz(-roll) into degrees.
func anglesOf(R [3][3]float64) (yaw, pitch, roll float64) {
	yaw = math.Atan2(R[0][2], R[2][2])
	pitch = math.Asin(math.Max(-1, math.Min(1, R[1][2])))
	roll = -math.Atan2(R[1][0], R[1][1])
	const deg = 180 / math.Pi
	return yaw * deg, pitch * deg, roll * deg
}

// meshUp turns a mesh point from image axes (y down, z away) into the
// canonical face's axes (y up, z towards the camera).
func meshUp(p [3]float64) [3]float64 { return [3]float64{p[0], -p[1], -p[2]} }

// hornRotation returns the rotation R that best maps the centred source
// points onto the centred targets (b ≈ s R a) given their cross-covariance S,
// as the eigenvector of Horn's 4x4 matrix with the largest eigenvalue.
func hornRotation(S [3][3]float64) [3][3]float64 {
	sxx, sxy, sxz := S[0][0], S[0][1], S[0][2]
	syx, syy, syz := S[1][0], S[1][1], S[1][2]
	szx, szy, szz := S[2][0], S[2][1], S[2][2]
	N := [4][4]float64{
		{sxx + syy + szz, syz - szy, szx - sxz, sxy - syx},
		{syz - szy, sxx - syy - szz, sxy + syx, szx + sxz},
		{szx - sxz, sxy + syx, -sxx + syy - szz, syz + szy},
		{sxy - syx, szx + sxz, syz + szy, -sxx - syy + szz},
	}
	vals, vecs := jacobiEigen4(N)
	best := 0
	for i := 1; i < 4; i++ {
		if vals[i] > vals[best] {
			best = i
		}
	}
	w, x, y, z := vecs[0][best], vecs[1][best], vecs[2][best], vecs[3][best]
	n := math.Sqrt(w*w + x*x + y*y + z*z)
	if n == 0 {
		return [3][3]float64{{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}
	}
	w, x, y, z = w/n, x/n, y/n, z/n
	return [3][3]float64{
		{1 - 2*(y*y+z*z), 2 * (x*y - z*w), 2 * (x*z + y*w)},
		{2 * (x*y + z*w), 1 - 2*(x*x+z*z), 2 * (y*z - x*w)},
		{2 * (x*z - y*w), 2 * (y*z + x*w), 1 - 2*(x*x+y*y)},
	}
}

// jacobiEigen4 diagonalises a symmetric 4x4 matrix by cyclic Jacobi
// rotations; column k of vecs is the eigenvector of vals[k].
func jacobiEigen4(a [4][4]float64) (vals [4]float64, vecs [4][4]float64) {
	for i := 0; i < 4; i++ {
		vecs[i][i] = 1
	}
	for sweep := 0; sweep < 50; sweep++ {
		off := 0.0
		for p := 0; p < 4; p++ {
			for q := p + 1; q < 4; q++ {
				off += a[p][q] * a[p][q]
			}
		}
		if off < 1e-22 {
			break
		}
		for p := 0; p < 4; p++ {
			for q := p + 1; q < 4; q++ {
				if math.Abs(a[p][q]) < 1e-300 {
					continue
				}
				theta := (a[q][q] - a[p][p]) / (2 * a[p][q])
				t := math.Copysign(1, theta) / (math.Abs(theta) + math.Sqrt(theta*theta+1))
				c := 1 / math.Sqrt(t*t+1)
				s := t * c
				for k := 0; k < 4; k++ { // A = A J
					akp, akq := a[k][p], a[k][q]
					a[k][p] = c*akp - s*akq
					a[k][q] = s*akp + c*akq
				}
				for k := 0; k < 4; k++ { // A = J^T A
					apk, aqk := a[p][k], a[q][k]
					a[p][k] = c*apk - s*aqk
					a[q][k] = s*apk + c*aqk
				}
				for k := 0; k < 4; k++ {
					vkp, vkq := vecs[k][p], vecs[k][q]
					vecs[k][p] = c*vkp - s*vkq
					vecs[k][q] = s*vkp + c*vkq
				}
			}
		}
	}
	for i := 0; i < 4; i++ {
		vals[i] = a[i][i]
	}
	return vals, vecs
}
