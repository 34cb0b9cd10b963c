// Package models owns everything about networks: the model manifest (what each
// .tflite file is, where it came from and its sha256), the TensorFlow Lite
// runtime (loading a verified model, interpreters with a delegate, a pool of
// interpreters per model), and, in subpackages, fetching pinned registry
// packages and compiling TF.js graph models.
//
// An estimator asks the Runtime for a model by name and gets a *Model it can
// run; it never sees delegates, file paths or pools.
package models
