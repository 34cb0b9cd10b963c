package main

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"imageapid/estimators/face"
)

// singleSubjectFolders hold one person per image even where num_faces is
// not labelled (portraits and face crops for the attribute and
// verification tasks).
var singleSubjectFolders = map[string]bool{
	"attributes": true, "emotion": true, "liveness": true, "mask": true, "verification": true,
}

// evalDetection reports, per folder, the share of single-face images
// (num_faces 1, or any image of a single-subject folder without that
// label) where Detect finds at least one face, with the default pipeline
// and with the close-up passes off.
func evalDetection(ctx context.Context, e *env) error {
	p, err := e.facePipeline()
	if err != nil {
		return err
	}
	base, err := face.New(e.rt, face.Config{GeometryFile: filepath.Join(e.modelsD, "build", "face_geometry.binarypb"), CloseUp: "off"})
	if err != nil {
		return err
	}
	type count struct{ files, found, foundOff int }
	byFolder := map[string]*count{}
	for _, f := range e.set.Files {
		folder, _, _ := strings.Cut(f.Path, "/")
		n := f.Labels.NumFaces
		if filepath.Ext(f.Path) == ".mp4" || (n != nil && *n != 1) || (n == nil && !singleSubjectFolders[folder]) {
			continue
		}
		img, err := e.imageAt(e.set.Path(f.Path))
		if err != nil {
			return err
		}
		dets, err := p.Detect(ctx, img)
		if err != nil {
			img.Close()
			return fmt.Errorf("%s: %w", f.Path, err)
		}
		detsOff, err := base.Detect(ctx, img)
		img.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", f.Path, err)
		}
		c := byFolder[folder]
		if c == nil {
			c = &count{}
			byFolder[folder] = c
		}
		c.files++
		if len(dets) > 0 {
			c.found++
		} else if e.verbose {
			fmt.Fprintf(e.out, "     no face: %s\n", f.Path)
		}
		if len(detsOff) > 0 {
			c.foundOff++
		}
	}
	folders := make([]string, 0, len(byFolder))
	for k := range byFolder {
		folders = append(folders, k)
	}
	sort.Strings(folders)
	var all count
	fmt.Fprintf(e.out, "   single-face images with a face found (close-up passes off in brackets)\n")
	for _, k := range folders {
		c := byFolder[k]
		fmt.Fprintf(e.out, "     %-13s %3d/%3d %.3f  (%3d %.3f)\n", k, c.found, c.files,
			float64(c.found)/float64(c.files), c.foundOff, float64(c.foundOff)/float64(c.files))
		all.files += c.files
		all.found += c.found
		all.foundOff += c.foundOff
	}
	if all.files == 0 {
		return fmt.Errorf("no single-face image in %s", e.set.Dir)
	}
	fmt.Fprintf(e.out, "     %-13s %3d/%3d %.3f  (%3d %.3f)\n", "all", all.found, all.files,
		float64(all.found)/float64(all.files), all.foundOff, float64(all.foundOff)/float64(all.files))
	return nil
}
