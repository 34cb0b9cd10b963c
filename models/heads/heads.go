// Package heads holds the small fitted heads (linear models on the face
// embedding) that ship with the models, embedded in the binary. Each is
// written by `make train` from ../shared/corpus, turned into a TFLite file
// by `make models`, and checked by a test that re-runs the training.
package heads

import "embed"

// Files holds the committed heads, by file name (<name>.json).
//
//go:embed *.json
var Files embed.FS
