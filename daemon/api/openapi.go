package api

// openAPI describes every route the server offers as an OpenAPI 3 document.
func (s *Server) openAPI() map[string]any {
	ref := func(name string) map[string]any { return map[string]any{"$ref": "#/components/schemas/" + name} }
	jsonBody := func(schema map[string]any) map[string]any {
		return map[string]any{"content": map[string]any{"application/json": map[string]any{"schema": schema}}}
	}
	errorResponses := map[string]any{
		"400": map[string]any{"description": "Processing error: bad base64, undecodable image, body too large, a service-specific refusal", "content": jsonBody(ref("HTTPError"))["content"]},
		"422": map[string]any{"description": "Validation error: a required field is missing or has the wrong type", "content": jsonBody(ref("HTTPValidationError"))["content"]},
		"503": map[string]any{"description": "Busy or timed out", "content": jsonBody(ref("HTTPError"))["content"]},
	}
	responses := func() map[string]any {
		r := map[string]any{"200": map[string]any{"description": "The sample with the service's results merged into its objects", "content": jsonBody(ref("Sample"))["content"]}}
		for k, v := range errorResponses {
			r[k] = v
		}
		return r
	}
	paths := map[string]any{}
	for _, name := range s.order {
		e := s.estimators[name]
		sample := map[string]any{"post": map[string]any{
			"summary":     name + ": process a sample",
			"operationId": name + "-process-sample",
			"requestBody": map[string]any{"required": true, "content": jsonBody(ref("Sample"))["content"]},
			"responses":   responses(),
		}}
		paths["/"+name+"/process/sample"] = sample
		paths["/"+name+"/v1/process/sample"] = sample
		if e.TakesImage() {
			image := map[string]any{"post": map[string]any{
				"summary":     name + ": process an image file (jpg, png or bmp)",
				"operationId": name + "-process-image",
				"requestBody": map[string]any{"required": true, "content": map[string]any{
					"multipart/form-data": map[string]any{"schema": map[string]any{
						"type":       "object",
						"required":   []string{"image"},
						"properties": map[string]any{"image": map[string]any{"type": "string", "format": "binary"}},
					}},
				}},
				"responses": responses(),
			}}
			paths["/"+name+"/process/image"] = image
			paths["/"+name+"/v1/process/image"] = image
		}
	}
	servicesList := map[string]any{"type": "array", "minItems": 1, "maxItems": maxServices,
		"items":       map[string]any{"type": "string", "enum": s.order},
		"description": "services to run, in order, on one decoded image and one face pass"}
	paths[processPath] = map[string]any{"post": map[string]any{
		"summary":     "Run several services, in order, on one sample",
		"description": "Each service reads the objects the ones before it wrote, as when calling their routes one after the other with the previous answer's objects; the answer is the merged sample. Unknown services are a 422.",
		"operationId": "process-services",
		"requestBody": map[string]any{"required": true, "content": map[string]any{
			"application/json": map[string]any{"schema": map[string]any{
				"allOf": []any{ref("Sample"), map[string]any{
					"type": "object", "required": []string{"services"},
					"properties": map[string]any{"services": servicesList},
				}},
			}},
			"multipart/form-data": map[string]any{"schema": map[string]any{
				"type":     "object",
				"required": []string{"image", "services"},
				"properties": map[string]any{
					"image":    map[string]any{"type": "string", "format": "binary"},
					"services": map[string]any{"type": "array", "items": map[string]any{"type": "string", "enum": s.order}, "description": "repeat the field, or give one comma-separated list"},
				},
			}},
		}},
		"responses": responses(),
	}}
	probe := func(summary string) map[string]any {
		return map[string]any{"get": map[string]any{"summary": summary, "responses": map[string]any{
			"200": map[string]any{"description": "OK"}, "503": map[string]any{"description": "Not ready"},
		}}}
	}
	for k, v := range s.extraPaths {
		paths[k] = v
	}
	paths["/healthz"] = probe("The process is up")
	paths["/readyz"] = probe("Models are loaded and the services answer")
	return map[string]any{
		"openapi": "3.0.3",
		"info": map[string]any{
			"title":       "imageapid Image API",
			"version":     s.version,
			"description": "Face and body analytics on an edge box, compatible with the Image API v1 JSON.",
		},
		"paths": paths,
		"components": map[string]any{"schemas": map[string]any{
			"Sample": map[string]any{
				"type": "object",
				"properties": map[string]any{
					"$image":  map[string]any{"type": "string", "format": "byte", "description": "base64 of the image file (jpg, png or bmp)"},
					"objects": map[string]any{"type": "array", "items": ref("Object")},
				},
				"additionalProperties": true,
			},
			"Object": map[string]any{
				"type": "object",
				"properties": map[string]any{
					"id":         map[string]any{"type": "integer", "minimum": 0},
					"class":      map[string]any{"type": "string", "enum": []string{"face", "body"}},
					"confidence": map[string]any{"type": "number", "minimum": 0, "maximum": 1},
					"bbox":       map[string]any{"type": "array", "items": map[string]any{"type": "number"}, "minItems": 4, "maxItems": 4, "description": "normalized [x1, y1, x2, y2]"},
					"fitter": map[string]any{"type": "object", "properties": map[string]any{
						"fitter_type": map[string]any{"type": "string", "enum": []string{"fda"}},
						"keypoints":   map[string]any{"type": "array", "items": map[string]any{"type": "number"}, "minItems": 63, "maxItems": 63, "description": "21 points as x, y, z in image pixels"},
						"left_eye":    map[string]any{"type": "array", "items": map[string]any{"type": "number"}, "minItems": 2, "maxItems": 2},
						"right_eye":   map[string]any{"type": "array", "items": map[string]any{"type": "number"}, "minItems": 2, "maxItems": 2},
					}},
					"angles": map[string]any{"type": "object", "properties": map[string]any{
						"yaw": map[string]any{"type": "number"}, "pitch": map[string]any{"type": "number"}, "roll": map[string]any{"type": "number"},
					}, "description": "degrees: yaw > 0 when the subject turns to their left, pitch > 0 looking up, roll > 0 clockwise in the image"},
				},
				"additionalProperties": true,
			},
			"HTTPError": map[string]any{
				"type":       "object",
				"required":   []string{"detail"},
				"properties": map[string]any{"detail": map[string]any{"type": "string"}},
			},
			"HTTPValidationError": map[string]any{
				"type":     "object",
				"required": []string{"detail"},
				"properties": map[string]any{"detail": map[string]any{"type": "array", "items": map[string]any{
					"type":     "object",
					"required": []string{"loc", "msg", "type"},
					"properties": map[string]any{
						"loc":  map[string]any{"type": "array", "items": map[string]any{}},
						"msg":  map[string]any{"type": "string"},
						"type": map[string]any{"type": "string"},
					},
				}}},
			},
		}},
	}
}
