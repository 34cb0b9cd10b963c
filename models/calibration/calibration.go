// Package calibration holds small measured tables that ship with the models
// (such as face verification error rates per distance), embedded in the
// binary so that no data file has to be found at run time. Each table is
// produced by its own command from ../shared/corpus and checked by a test
// that re-runs it.
package calibration

import "embed"

// Files holds the committed tables, by file name.
//
//go:embed *.json
var Files embed.FS
