package watchlist

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"

	"imageapid/estimators"
)

// IdentifierService is the Image API service name of FaceIdentifier.
const IdentifierService = "face-identifier"

// FaceIdentifier is the face-identifier Image API service: every face
// object gains "identity" ({person_id, name, score, fa_r, distance}, or
// null when nobody on the list is under its threshold), searched in one
// list. Face objects with a "$template" are identified from it; otherwise
// the faces of the image are found, and the k-th updates the k-th object
// (extra faces are appended), as the detection services merge.
func (s *Service) FaceIdentifier(list string) estimators.Estimator {
	return &faceIdentifier{s: s, list: list}
}

type faceIdentifier struct {
	s    *Service
	list string
}

func (*faceIdentifier) Name() string     { return IdentifierService }
func (*faceIdentifier) TakesImage() bool { return true }
func (*faceIdentifier) NeedsImage() bool { return false }

func (f *faceIdentifier) Process(ctx context.Context, smp *estimators.Sample) error {
	fromTemplates := false
	for i, o := range smp.Objects {
		if o.String("class") != "face" || !o.Has("$template") {
			continue
		}
		fromTemplates = true
		var b64 string
		if ok, err := o.Get("$template", &b64); !ok || err != nil {
			return estimators.BadInput("object %d: \"$template\" is not a string", i)
		}
		raw, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			return estimators.BadInput("object %d: \"$template\": %s", i, estimators.MsgBadBase64)
		}
		c, err := f.s.SearchTemplate(ctx, f.list, raw, 1)
		if err := f.set(o, c, err); err != nil {
			return err
		}
	}
	if fromTemplates {
		return nil
	}
	if !smp.HasImage() {
		return estimators.BadInput("face-identifier needs face objects with \"$template\", or \"$image\"")
	}
	if f.s.extractor == nil {
		return errors.New("face-identifier: no template extractor")
	}
	faces, err := f.s.extractor.Faces(ctx, smp.Image)
	if err != nil {
		return err
	}
	for k, face := range faces {
		var o *estimators.Object
		if k < len(smp.Objects) {
			o = smp.Objects[k]
		} else {
			o = estimators.NewObject()
			o.Set("id", k)
			o.Set("class", "face")
			o.Set("confidence", face.Quality.Detection)
			o.Set("bbox", face.BBox[:])
			smp.Objects = append(smp.Objects, o)
		}
		c, err := f.s.Search(ctx, f.list, face.Vector, 1)
		if err := f.set(o, c, err); err != nil {
			return err
		}
	}
	return nil
}

// set writes the best candidate (or null) as the object's identity.
func (f *faceIdentifier) set(o *estimators.Object, c []Candidate, err error) error {
	switch {
	case errors.Is(err, ErrNotFound): // no such list yet: nobody is known
	case errors.Is(err, ErrBadInput):
		return estimators.BadInput("%s", strings.TrimPrefix(err.Error(), ErrBadInput.Error()+": "))
	case err != nil:
		return err
	}
	if len(c) == 0 {
		return o.Set("identity", nil)
	}
	return o.Set("identity", Identity{PersonID: c[0].PersonID, Name: c[0].Name, Score: c[0].Score, FAR: c[0].FAR, Distance: c[0].Distance})
}
