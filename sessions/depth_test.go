package sessions

import (
	"math"
	"testing"

	"imageapid/estimators/face"
)

// A face-like set of points with depth: turned as a flat picture it stays
// on a homography of the frontal view; turned as a head it does not.
func TestPlanarResidual(t *testing.T) {
	// x, y in eye distances, z towards the camera: the nose stands out,
	// the cheeks and jaw fall back.
	head := [][3]float64{
		{0, -1.4, 0.3}, {-0.6, -1.2, 0.1}, {0.6, -1.2, 0.1}, {-0.8, -0.5, 0}, {0.8, -0.5, 0},
		{-0.7, 0, 0.1}, {-0.3, 0, 0.15}, {0.3, 0, 0.15}, {0.7, 0, 0.1}, {0, 0, 0.3},
		{0, 0.3, 0.5}, {0, 0.6, 0.8}, {0, 0.7, 0.7}, {-0.25, 0.65, 0.45}, {0.25, 0.65, 0.45},
		{-0.8, 0.6, 0}, {0.8, 0.6, 0}, {-0.4, 1.1, 0.3}, {0.4, 1.1, 0.3}, {-0.8, 1.2, -0.2},
		{0.8, 1.2, -0.2}, {0, 1.6, 0.2}, {-1.1, 0.2, -0.5}, {1.1, 0.2, -0.5},
	}
	view := func(deg float64, flat bool) []face.Point {
		th := deg * math.Pi / 180
		out := make([]face.Point, len(head))
		for i, p := range head {
			x, y, z := p[0], p[1], p[2]
			if flat {
				z = 0
			}
			xr, zr := x*math.Cos(th)+z*math.Sin(th), -x*math.Sin(th)+z*math.Cos(th)
			// 60 px between the eyes, camera 8 eye distances away.
			k := 60 * 8 / (8 - zr)
			out[i] = face.Point{X: 320 + k*xr, Y: 240 + k*y}
		}
		return out
	}
	front := view(0, false)
	flatFront := view(0, true)
	for _, deg := range []float64{-30, -20, 20, 30} {
		rFlat, ok := PlanarResidual(flatFront, view(deg, true), 60)
		if !ok || rFlat > 1e-6 {
			t.Errorf("a flat picture turned %v degrees: residual %v (ok %v), want about 0", deg, rFlat, ok)
		}
		rHead, ok := PlanarResidual(front, view(deg, false), 60)
		if !ok || rHead < 0.03 {
			t.Errorf("a head turned %v degrees: residual %v (ok %v), want well above 0", deg, rHead, ok)
		}
	}
	if _, ok := PlanarResidual(front[:4], front[:4], 60); ok {
		t.Error("four points cannot tell a plane, yet a residual was given")
	}
}
