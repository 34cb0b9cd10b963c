package tflitefile

import (
	"bytes"
	"encoding/binary"
	"math"
	"testing"

	tflite "github.com/mattn/go-tflite"
)

func f32bytes(v ...float32) []byte {
	var b []byte
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	return b
}

// A file from the writer is parsed and run by the TFLite 2.9 runtime: a
// 1x1 convolution, a fused-ReLU addition and a fully connected layer.
func TestWrittenModelRunsInTFLite(t *testing.T) {
	m := &Model{
		Description: "test",
		Tensors: []Tensor{
			{Name: "in", Shape: []int32{1, 2, 2, 2}, Type: Float32},
			{Name: "w", Shape: []int32{1, 1, 1, 2}, Type: Float32, Buffer: 1}, // OHWI
			{Name: "b", Shape: []int32{1}, Type: Float32, Buffer: 2},
			{Name: "conv", Shape: []int32{1, 2, 2, 1}, Type: Float32},
			{Name: "shift", Shape: []int32{1}, Type: Float32, Buffer: 3},
			{Name: "relu", Shape: []int32{1, 2, 2, 1}, Type: Float32},
			{Name: "fcw", Shape: []int32{2, 4}, Type: Float32, Buffer: 4},
			{Name: "out", Shape: []int32{1, 2}, Type: Float32},
		},
		Inputs:  []int32{0},
		Outputs: []int32{7},
		Operators: []Operator{
			{Op: OpConv2D, Inputs: []int32{0, 1, 2}, Outputs: []int32{3}, Options: &Conv2DOptions{Padding: Valid, StrideW: 1, StrideH: 1}},
			{Op: OpAdd, Inputs: []int32{3, 4}, Outputs: []int32{5}, Options: &ArithmeticOptions{Op: OpAdd, Activation: ActRelu}},
			{Op: OpFullyConnected, Inputs: []int32{5, 6, -1}, Outputs: []int32{7}, Options: &FullyConnectedOptions{}},
		},
		Buffers: [][]byte{f32bytes(1, 2), f32bytes(0.5), f32bytes(-3), f32bytes(1, 1, 1, 1, 1, 0, 0, 0)},
	}
	b, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := m.Encode()
	if !bytes.Equal(b, b2) {
		t.Fatal("two encodings differ")
	}
	tm := tflite.NewModel(b)
	if tm == nil {
		t.Fatal("TFLite cannot parse the written model")
	}
	defer tm.Delete()
	opts := tflite.NewInterpreterOptions()
	defer opts.Delete()
	it := tflite.NewInterpreter(tm, opts)
	if it == nil {
		t.Fatal("no interpreter")
	}
	defer it.Delete()
	if st := it.AllocateTensors(); st != tflite.OK {
		t.Fatalf("allocate: %v", st)
	}
	in := it.GetInputTensor(0).Float32s()
	// pixels (c0,c1): conv = c0 + 2*c1 + 0.5, then -3 and relu.
	copy(in, []float32{1, 1, 2, 0, 0, 0, 3, 1})
	if st := it.Invoke(); st != tflite.OK {
		t.Fatalf("invoke: %v", st)
	}
	got := it.GetOutputTensor(0).Float32s()
	// relu: [0.5, 0, 0, 2.5] -> fc rows: sum = 3, first = 0.5
	want := []float32{3, 0.5}
	for i := range want {
		if math.Abs(float64(got[i]-want[i])) > 1e-6 {
			t.Fatalf("output %v, want %v", got, want)
		}
	}
	if n := it.GetOutputTensor(0).Name(); n != "out" {
		t.Errorf("output name %q", n)
	}
}
