package face

import "sync/atomic"

// Passes counts the pipeline's expensive steps since it was built: Detect
// calls (each runs the detector once or more) and Fit calls (each runs the
// mesh once, or twice with RefineMesh). Tests read it to assert that work
// is not repeated; it costs one atomic add per call.
type Passes struct {
	Detect uint64
	Fit    uint64
}

// passCounter is the pipeline's live count, safe for concurrent use.
type passCounter struct{ detect, fit atomic.Uint64 }

// Passes returns the Detect and Fit calls the pipeline has run so far.
func (p *Pipeline) Passes() Passes {
	return Passes{Detect: p.passes.detect.Load(), Fit: p.passes.fit.Load()}
}

// Config returns the pipeline's settings with their defaults applied: two
// pipelines with equal settings (over the same runtime) find the same faces.
func (p *Pipeline) Config() Config { return p.cfg }
