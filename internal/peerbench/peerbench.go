// Package peerbench runs the peer the benchmarks compare with, Human 3.3.6 on
// TF.js's WASM backend in Node (installed by `make peer` into
// third_party/peer), on the same image in the same run, so that a speed
// figure can be given as a ratio to it on a shared, noisy machine.
package peerbench

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
)

//go:embed human.js
var script []byte

// ErrNotInstalled is returned when third_party/peer has no Human.
var ErrNotInstalled = errors.New("the peer is not installed (run `make peer`)")

// Result is the peer's cost per image.
type Result struct {
	Backend string  `json:"backend"`
	Faces   int     `json:"faces"`
	WallMS  float64 `json:"ms_per_image"`
	CPUMS   float64 `json:"cpu_ms_per_image"`
}

// Human runs the peer's face set on rgb (width x height, 3 bytes a pixel)
// n times after one warm-up; root is the repository root.
func Human(ctx context.Context, root string, rgb []byte, width, height, n int) (Result, error) {
	peer := filepath.Join(root, "third_party", "peer")
	if _, err := os.Stat(filepath.Join(peer, "node_modules", "@vladmandic", "human")); err != nil {
		return Result{}, ErrNotInstalled
	}
	if len(rgb) != width*height*3 {
		return Result{}, fmt.Errorf("peer: %d bytes for a %dx%d RGB image", len(rgb), width, height)
	}
	dir, err := os.MkdirTemp("", "peerbench")
	if err != nil {
		return Result{}, err
	}
	defer os.RemoveAll(dir)
	js, img := filepath.Join(dir, "human.js"), filepath.Join(dir, "image.rgb")
	if err := os.WriteFile(js, script, 0o600); err != nil {
		return Result{}, err
	}
	if err := os.WriteFile(img, rgb, 0o600); err != nil {
		return Result{}, err
	}
	cmd := exec.CommandContext(ctx, "node", js, peer, img, strconv.Itoa(width), strconv.Itoa(height), strconv.Itoa(n))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return Result{}, fmt.Errorf("peer: node: %w", err)
	}
	var r Result
	if err := json.Unmarshal(out, &r); err != nil {
		return Result{}, fmt.Errorf("peer: %w in %q", err, out)
	}
	if r.Faces != 1 {
		return r, fmt.Errorf("peer found %d faces, want 1", r.Faces)
	}
	return r, nil
}
