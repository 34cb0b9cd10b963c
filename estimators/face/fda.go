package face

// Mesh indices behind the 21 fda points. "Left" in fda names is the image
// left, so for a face looking at the camera the fda "left eye" is the
// subject's right eye (mesh indices 33..133). Each point is the mean of its
// indices; the eye centres are the means of the eye contours, as iBUG-68 eye
// centres are the means of points 36-41 and 42-47.
var (
	// subjectRightEye and subjectLeftEye are the 16-point eye contours.
	subjectRightEye = []int{33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246}
	subjectLeftEye  = []int{263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466}

	fdaMesh = [21][]int{
		0:  {46, 70},   // left_eye_brow_left: outer end of the subject's right brow
		1:  {105, 52},  // left_eye_brow_up: its top middle
		2:  {55, 107},  // left_eye_brow_right: its inner end
		3:  {285, 336}, // right_eye_brow_left: inner end of the subject's left brow
		4:  {334, 282}, // right_eye_brow_up
		5:  {276, 300}, // right_eye_brow_right: its outer end
		6:  {33},       // left_eye_left: outer corner of the subject's right eye
		7:  subjectRightEye,
		8:  {133}, // left_eye_right: its inner corner
		9:  {362}, // right_eye_left: inner corner of the subject's left eye
		10: subjectLeftEye,
		11: {263},    // right_eye_right: its outer corner
		12: {132},    // left_ear_bottom: face contour at the subject's right ear lobe
		13: {64},     // nose_left: outer edge of the subject's right nose wing
		14: {1},      // nose: tip
		15: {294},    // nose_right
		16: {361},    // right_ear_bottom
		17: {61},     // mouth_left: the subject's right mouth corner
		18: {13, 14}, // mouth: centre between the inner lips
		19: {291},    // mouth_right
		20: {152},    // chin
	}
)

// fdaPoints maps a 468-point mesh to the 21 fda points.
func fdaPoints(mesh [][3]float64) [21][3]float64 {
	var out [21][3]float64
	for i, idx := range fdaMesh {
		out[i] = meanOf(mesh, idx)
	}
	return out
}

func meanOf(mesh [][3]float64, idx []int) [3]float64 {
	var p [3]float64
	for _, i := range idx {
		for k := 0; k < 3; k++ {
			p[k] += mesh[i][k]
		}
	}
	n := float64(len(idx))
	return [3]float64{p[0] / n, p[1] / n, p[2] / n}
}
