package face

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"

	"gocv.io/x/gocv"

	"imageapid/internal/testenv"
)

func TestAnchors(t *testing.T) {
	short, full := shortRangeAnchors(), fullRangeAnchors()
	if len(short) != 896 || len(full) != 2304 {
		t.Fatalf("anchors: short %d, full %d; want 896 and 2304", len(short), len(full))
	}
	// Short range: 16x16 cells of stride 8 with 2 anchors, then 8x8 cells of stride 16 with 6.
	want := []struct {
		i      int
		cx, cy float64
	}{
		{0, 0.5 / 16, 0.5 / 16}, {1, 0.5 / 16, 0.5 / 16}, {2, 1.5 / 16, 0.5 / 16},
		{511, 15.5 / 16, 15.5 / 16}, {512, 0.5 / 8, 0.5 / 8}, {517, 0.5 / 8, 0.5 / 8}, {518, 1.5 / 8, 0.5 / 8},
		{895, 7.5 / 8, 7.5 / 8},
	}
	for _, w := range want {
		if a := short[w.i]; math.Abs(a.cx-w.cx) > 1e-12 || math.Abs(a.cy-w.cy) > 1e-12 {
			t.Errorf("short anchor %d = %+v, want (%v, %v)", w.i, a, w.cx, w.cy)
		}
	}
	if a := full[48]; math.Abs(a.cx-0.5/48) > 1e-12 || math.Abs(a.cy-1.5/48) > 1e-12 {
		t.Errorf("full anchor 48 = %+v, want the first cell of the second row", a)
	}
}

func TestDecode(t *testing.T) {
	bf := &blazeFace{size: 128, anchors: shortRangeAnchors()}
	regs := make([]float32, 896*16)
	logits := make([]float32, 896)
	for i := range logits {
		logits[i] = -10
	}
	// Anchor 2 is centred at (1.5/16, 0.5/16) of the input: shift it by 12 px right, 4 px down, 32x24 px box.
	logits[2] = 2
	copy(regs[2*16:], []float32{12, 4, 32, 24, 0, 0, 10, -2})
	dets := bf.decode(regs, logits, 0.5)
	if len(dets) != 1 {
		t.Fatalf("decoded %d detections, want 1", len(dets))
	}
	d := dets[0]
	cx, cy := 1.5/16+12.0/128, 0.5/16+4.0/128
	if math.Abs(d.X1-(cx-16.0/128)) > 1e-9 || math.Abs(d.Y2-(cy+12.0/128)) > 1e-9 {
		t.Errorf("box %+v, want centre (%v, %v) and 32x24 px", d, cx, cy)
	}
	if math.Abs(d.Score-sigmoid(2)) > 1e-12 {
		t.Errorf("score %v, want sigmoid(2)", d.Score)
	}
	if k := d.Keypoints[1]; math.Abs(k.X-(1.5/16+10.0/128)) > 1e-9 || math.Abs(k.Y-(0.5/16-2.0/128)) > 1e-9 {
		t.Errorf("keypoint 1 %+v", k)
	}
}

func TestWeightedNMS(t *testing.T) {
	a := Detection{X1: 0, Y1: 0, X2: 10, Y2: 10, Score: 0.9}
	b := Detection{X1: 1, Y1: 1, X2: 11, Y2: 11, Score: 0.6}
	far := Detection{X1: 50, Y1: 50, X2: 60, Y2: 60, Score: 0.7}
	out := weightedNMS([]Detection{b, far, a}, 0.3)
	if len(out) != 2 {
		t.Fatalf("got %d detections, want 2", len(out))
	}
	// a and b blend by score: 0.9*0 + 0.6*1 over 1.5 = 0.4.
	if out[0].Score != 0.9 || math.Abs(out[0].X1-0.4) > 1e-12 || math.Abs(out[0].X2-10.4) > 1e-12 {
		t.Errorf("blended %+v, want score 0.9 and x 0.4..10.4", out[0])
	}
	if out[1] != far {
		t.Errorf("second %+v, want the far box untouched", out[1])
	}
}

func TestHornRecoversRotation(t *testing.T) {
	// A known rotation R = Ry(30°) Rx(-10°) Rz(-20°), i.e. yaw 30, pitch 10, roll 20.
	rad := math.Pi / 180
	R := mul(mul(rotY(30*rad), rotX(-10*rad)), rotZ(-20*rad))
	cf := &canonicalFace{}
	mesh := make([][3]float64, meshPoints)
	for i := range cf.vertices {
		v := [3]float64{math.Sin(float64(i)), math.Cos(float64(3 * i)), math.Sin(float64(7*i) + 1)}
		cf.vertices[i] = v
		if i%10 == 0 {
			cf.basis = append(cf.basis, weightedLandmark{i, 1 + float64(i%3)})
		}
		// b = 2 R v + t in the canonical frame, then back to image axes (y down, z away).
		var b [3]float64
		for r := 0; r < 3; r++ {
			b[r] = 2*(R[r][0]*v[0]+R[r][1]*v[1]+R[r][2]*v[2]) + float64(r+1)*5
		}
		mesh[i] = [3]float64{b[0], -b[1], -b[2]}
	}
	yaw, pitch, roll := headPose(cf, mesh)
	if math.Abs(yaw-30) > 1e-6 || math.Abs(pitch-10) > 1e-6 || math.Abs(roll-20) > 1e-6 {
		t.Errorf("yaw %v pitch %v roll %v, want 30, 10, 20", yaw, pitch, roll)
	}
}

func rotX(a float64) [3][3]float64 {
	c, s := math.Cos(a), math.Sin(a)
	return [3][3]float64{{1, 0, 0}, {0, c, -s}, {0, s, c}}
}
func rotY(a float64) [3][3]float64 {
	c, s := math.Cos(a), math.Sin(a)
	return [3][3]float64{{c, 0, s}, {0, 1, 0}, {-s, 0, c}}
}
func rotZ(a float64) [3][3]float64 {
	c, s := math.Cos(a), math.Sin(a)
	return [3][3]float64{{c, -s, 0}, {s, c, 0}, {0, 0, 1}}
}
func mul(a, b [3][3]float64) (m [3][3]float64) {
	for i := 0; i < 3; i++ {
		for j := 0; j < 3; j++ {
			for k := 0; k < 3; k++ {
				m[i][j] += a[i][k] * b[k][j]
			}
		}
	}
	return m
}

func TestParseGeometry(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(testenv.Root(t), "models", "build", "face_geometry.binarypb"))
	if err != nil {
		t.Fatalf("face geometry (run `make models`): %v", err)
	}
	cf, err := parseGeometry(b)
	if err != nil {
		t.Fatal(err)
	}
	// The canonical face is symmetric: the outer eye corners mirror each other,
	// the subject's right eye (33) on the -x side, and the nose tip (1) is nearest the camera.
	r, l, nose := cf.vertices[33], cf.vertices[263], cf.vertices[1]
	if r[0] >= 0 || math.Abs(r[0]+l[0]) > 1e-4 || math.Abs(r[1]-l[1]) > 1e-4 {
		t.Errorf("eye corners %v and %v are not a mirrored pair", r, l)
	}
	for i, v := range cf.vertices {
		if v[2] > nose[2]+0.5 {
			t.Errorf("vertex %d (%v) is well in front of the nose tip %v", i, v, nose)
			break
		}
	}
	if len(cf.basis) < 10 {
		t.Errorf("%d procrustes landmarks", len(cf.basis))
	}
	if _, err := parseGeometry(b[:len(b)/2]); err == nil {
		t.Error("a truncated file parsed")
	}
}

// TestPoseAgreesWithMeshAxes cross-checks the Procrustes angles on real
// faces with an independent estimate: the head's axes read straight off the
// mesh (x along the outer eye corners, y from chin to forehead), which lie
// within a degree of the canonical face's frame.
func TestPoseAgreesWithMeshAxes(t *testing.T) {
	p, err := New(testenv.Runtime(t, ""), Config{})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"astronaut.png", "messi5.jpg", "camera.png"} {
		img := gocv.IMRead(testenv.Fixture(t, name), gocv.IMReadColor)
		dets, err := p.Detect(context.Background(), img)
		if err != nil || len(dets) == 0 {
			t.Fatalf("%s: %d faces, %v", name, len(dets), err)
		}
		f, err := p.Fit(context.Background(), img, dets[0])
		img.Close()
		if err != nil {
			t.Fatal(err)
		}
		yaw, pitch, roll := axesPose(f.Mesh)
		t.Logf("%s: procrustes yaw %.1f pitch %.1f roll %.1f; mesh axes yaw %.1f pitch %.1f roll %.1f",
			name, f.Yaw, f.Pitch, f.Roll, yaw, pitch, roll)
		if math.Abs(f.Yaw-yaw) > 8 || math.Abs(f.Pitch-pitch) > 8 || math.Abs(f.Roll-roll) > 8 {
			t.Errorf("%s: the two pose estimates disagree by more than 8°", name)
		}
	}
}

// axesPose reads the head's axes straight from the mesh: x along the outer eye corners
// (33 -> 263), y from the chin (152) to the top of the forehead (10) made
// orthogonal to x.
func axesPose(mesh [][3]float64) (yaw, pitch, roll float64) {
	a, b := meshUp(mesh[33]), meshUp(mesh[263])
	chin, top := meshUp(mesh[152]), meshUp(mesh[10])
	ex := unit(sub(b, a))
	up := sub(top, chin)
	ey := unit(sub(up, scale(ex, dot(up, ex))))
	ez := cross(ex, ey)
	R := [3][3]float64{
		{ex[0], ey[0], ez[0]},
		{ex[1], ey[1], ez[1]},
		{ex[2], ey[2], ez[2]},
	}
	return anglesOf(R)
}

func sub(a, b [3]float64) [3]float64 { return [3]float64{a[0] - b[0], a[1] - b[1], a[2] - b[2]} }
func dot(a, b [3]float64) float64    { return a[0]*b[0] + a[1]*b[1] + a[2]*b[2] }
func scale(a [3]float64, k float64) [3]float64 {
	return [3]float64{a[0] * k, a[1] * k, a[2] * k}
}
func unit(a [3]float64) [3]float64 {
	n := math.Sqrt(dot(a, a))
	if n == 0 {
		return a
	}
	return scale(a, 1/n)
}
func cross(a, b [3]float64) [3]float64 {
	return [3]float64{a[1]*b[2] - a[2]*b[1], a[2]*b[0] - a[0]*b[2], a[0]*b[1] - a[1]*b[0]}
}
