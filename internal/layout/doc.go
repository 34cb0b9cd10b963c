// Package layout keeps the project's floors apart: its test fails when a
// lower floor imports an upper one (models/ an estimator) or when the daemon
// links the code that fits against ../shared/corpus (fitting/).
package layout
