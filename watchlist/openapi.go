package watchlist

// OpenAPIPaths describes the watchlist routes for the daemon's /openapi.json.
func OpenAPIPaths() map[string]any {
	errs := func(codes ...string) map[string]any {
		out := map[string]any{}
		for _, c := range codes {
			out[c] = map[string]any{"description": "{\"detail\": ...}"}
		}
		return out
	}
	with := func(m map[string]any, ok, desc string) map[string]any {
		m[ok] = map[string]any{"description": desc}
		return m
	}
	param := func(names ...string) []any {
		out := []any{}
		for _, n := range names {
			out = append(out, map[string]any{"name": n, "in": "path", "required": true, "schema": map[string]any{"type": "string"}})
		}
		return out
	}
	object := func(props map[string]any) map[string]any {
		return map[string]any{"content": map[string]any{"application/json": map[string]any{"schema": map[string]any{"type": "object", "properties": props}}}}
	}
	str := map[string]any{"type": "string"}
	b64 := map[string]any{"type": "string", "format": "byte"}
	probe := map[string]any{"content": map[string]any{
		"multipart/form-data": map[string]any{"schema": map[string]any{"type": "object", "properties": map[string]any{
			"image": map[string]any{"type": "string", "format": "binary"}, "limit": map[string]any{"type": "integer"}}}},
		"application/json": map[string]any{"schema": map[string]any{"type": "object", "properties": map[string]any{
			"$image": b64, "$template": b64, "limit": map[string]any{"type": "integer", "minimum": 1, "maximum": 100}}}},
	}}
	list := Prefix + "/{list}"
	person := list + "/persons/{id}"
	return map[string]any{
		Prefix: map[string]any{"get": map[string]any{"summary": "The watchlists, their sizes and match thresholds",
			"responses": with(errs(), "200", "{watchlists: [{name, fa_r, threshold, persons, faces, created}]}")}},
		list: map[string]any{"patch": map[string]any{"summary": "Set a list's target false-accept rate (its match threshold comes from the verify-matcher calibration table)",
			"parameters": param("list"), "requestBody": object(map[string]any{"fa_r": map[string]any{"type": "number"}}),
			"responses": with(errs("400"), "200", "the list")}},
		list + "/persons": map[string]any{
			"post": map[string]any{"summary": "Add a person (the list is created on first use)", "parameters": param("list"),
				"requestBody": object(map[string]any{"name": str, "metadata": map[string]any{"type": "object"}}),
				"responses":   with(errs("400", "413"), "201", "{id, name, metadata, created, faces}")},
			"get": map[string]any{"summary": "A page of persons (query: after, limit)", "parameters": param("list"),
				"responses": with(errs("400", "404"), "200", "{persons: [...], next?}")},
		},
		person: map[string]any{
			"get":    map[string]any{"summary": "A person and their faces", "parameters": param("list", "id"), "responses": with(errs("404"), "200", "the person")},
			"patch":  map[string]any{"summary": "Change a person's name or metadata", "parameters": param("list", "id"), "requestBody": object(map[string]any{"name": str, "metadata": map[string]any{"type": "object"}}), "responses": with(errs("400", "404"), "200", "the person")},
			"delete": map[string]any{"summary": "Erase a person and their templates (gone from the database file at once)", "parameters": param("list", "id"), "responses": with(errs("404"), "200", "{id, deleted}")},
		},
		person + "/faces": map[string]any{"post": map[string]any{
			"summary":    "Enrol a face: multipart part image, or JSON {$image} or {$template}; one face of enrolment quality, else 400 saying why",
			"parameters": param("list", "id"), "requestBody": probe,
			"responses": with(errs("400", "404", "413"), "201", "{face_id, quality}")}},
		person + "/faces/{face_id}": map[string]any{"delete": map[string]any{"summary": "Erase one template",
			"parameters": param("list", "id", "face_id"), "responses": with(errs("404"), "200", "{face_id, deleted}")}},
		list + "/search": map[string]any{"post": map[string]any{
			"summary":    "Identify every face of an image (or a template) against the list, best first, only under the match threshold",
			"parameters": param("list"), "requestBody": probe,
			"responses": with(errs("400", "404", "413"), "200", "{faces: [{bbox, candidates: [{person_id, name, face_id, distance, score, fa_r}]}]}")}},
		list + "/export": map[string]any{"get": map[string]any{"summary": "The list as a versioned file (persons and templates, no images)",
			"parameters": param("list"), "responses": with(errs("404"), "200", "{format, version, watchlist, fa_r, model_id, persons: [{id, name, metadata, faces: [{face_id, $template}]}]}")}},
		list + "/import": map[string]any{"post": map[string]any{"summary": "Add an export's persons and templates to the list (all or nothing; ids kept)",
			"parameters": param("list"), "requestBody": object(map[string]any{"format": str, "version": map[string]any{"type": "integer"}, "persons": map[string]any{"type": "array"}}),
			"responses": with(errs("400", "409", "413"), "201", "{watchlist, persons, faces}")}},
	}
}
