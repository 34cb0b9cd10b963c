package models

import (
	"fmt"

	tflite "github.com/mattn/go-tflite"
)

// OpenBytes loads a model that is not (yet) in the manifest from memory, with
// the same interpreters and delegates the runtime uses. The model compiler
// runs its gates and calibration through it. Close frees it.
func OpenBytes(name string, b []byte, mo ModelOptions) (*Model, error) {
	if err := ValidateDelegate(mo.Delegate); err != nil {
		return nil, err
	}
	mo = Options{Delegate: mo.Delegate, Threads: mo.Threads, Pool: mo.Pool}.forModel(name)
	tm := tflite.NewModel(b)
	if tm == nil {
		return nil, fmt.Errorf("model %s: TFLite cannot parse it", name)
	}
	m := &Model{Info: &ModelInfo{Name: name}, Delegate: mo.Delegate, Threads: mo.Threads, model: tm, pool: make(chan *Interpreter, mo.Pool)}
	for i := 0; i < mo.Pool; i++ {
		it, err := newInterpreter(tm, mo)
		if err != nil {
			m.close()
			return nil, fmt.Errorf("model %s: %w", name, err)
		}
		m.all = append(m.all, it)
		m.pool <- it
	}
	return m, nil
}

// Close frees a model opened with OpenBytes; it must not be in use.
func (m *Model) Close() { m.close() }

// Outputs is the number of output tensors.
func (i *Interpreter) Outputs() int { return i.it.GetOutputTensorCount() }
