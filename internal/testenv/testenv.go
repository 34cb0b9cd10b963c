// Package testenv finds what tests read at run time: the project root, the
// registry fixtures unpacked by `make deps`, the model files built by
// `make models`, and ../shared (evaluation data that exists on CI and
// developers' machines but not on a user's clone).
package testenv

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"imageapid/models"
)

// Root returns the project root (the directory holding go.mod).
func Root(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// Fixture returns the path of a registry fixture (astronaut.png, chelsea.png,
// camera.png, coffee.png, messi5.jpg, vtest.avi), failing the test when
// `make deps` has not unpacked it.
func Fixture(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(Root(t), "third_party", "fixtures", name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("fixture %s missing: run `make deps` (%v)", name, err)
	}
	return p
}

// ReadFixture returns a registry fixture's bytes.
func ReadFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(Fixture(t, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Shared returns ../shared/<sub> or skips the test, saying why, where it is absent.
func Shared(t testing.TB, sub string) string {
	t.Helper()
	p := filepath.Join(filepath.Dir(Root(t)), "shared", sub)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("%s is absent (evaluation data exists only on CI and developer machines): %v", p, err)
	}
	return p
}

// Runtime returns a model runtime over the built models with the given
// delegate ("" = xnnpack), failing the test when `make models` has not run.
func Runtime(t testing.TB, delegate string) *models.Runtime {
	t.Helper()
	return RuntimeWith(t, models.Options{Delegate: delegate, Threads: 1, Pool: 2})
}

// RuntimeWith is Runtime with the given options (Dir is set to the built
// models), for benchmarks that vary threads or pools.
func RuntimeWith(t testing.TB, opts models.Options) *models.Runtime {
	t.Helper()
	root := Root(t)
	m, err := models.LoadManifest(filepath.Join(root, "models", "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	opts.Dir = filepath.Join(root, "models", "build")
	rt, err := models.NewRuntime(m, opts, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rt.Close)
	return rt
}
