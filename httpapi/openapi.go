package httpapi

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v4"

	"messageapi"
)

// apiDocument is the API's OpenAPI document in the two forms it serves:
// the YAML built into the binary, and the same document as JSON, made once
// at start-up.
type apiDocument struct {
	yaml, json servedFile
}

// servedFile is a static response body with its media type and ETag.
type servedFile struct {
	contentType string
	body        []byte
	etag        string
}

func newAPIDocument() (apiDocument, error) {
	src := messageapi.OpenAPI()
	js, err := yamlToJSON(src)
	if err != nil {
		return apiDocument{}, fmt.Errorf("openapi.yaml as JSON: %w", err)
	}
	return apiDocument{
		yaml: newServedFile("application/yaml", src),
		json: newServedFile("application/json", js),
	}, nil
}

func newServedFile(contentType string, body []byte) servedFile {
	sum := sha256.Sum256(body)
	return servedFile{contentType: contentType, body: body, etag: `"` + hex.EncodeToString(sum[:16]) + `"`}
}

// yamlToJSON converts a YAML document to indented JSON. It refuses YAML
// values that JSON has no exact form for (timestamps, keys that are not
// strings), rather than let the JSON say something else than the YAML.
func yamlToJSON(src []byte) ([]byte, error) {
	var doc any
	if err := yaml.Load(src, &doc); err != nil {
		return nil, err
	}
	if err := checkJSONValue(doc, "$"); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// checkJSONValue reports the first value under v that is not plain JSON
// data; path names where it is.
func checkJSONValue(v any, path string) error {
	switch v := v.(type) {
	case nil, string, bool, int, int64, uint64, float64:
		return nil
	case map[string]any:
		for k, e := range v {
			if err := checkJSONValue(e, path+"."+k); err != nil {
				return err
			}
		}
		return nil
	case []any:
		for i, e := range v {
			if err := checkJSONValue(e, path+"["+strconv.Itoa(i)+"]"); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("%s is a %T, which JSON cannot hold as such; quote it", path, v)
}

// serve answers GET (and HEAD) with the file. The file changes only with
// the binary, so caches may keep it for a while and revalidate it with
// its ETag.
func (f servedFile) serve(w http.ResponseWriter, r *http.Request) {
	if err := noParams(r); err != nil {
		writeError(w, r, err)
		return
	}
	h := w.Header()
	h.Set("ETag", f.etag)
	h.Set("Cache-Control", "public, max-age=300")
	if etagMatches(r.Header.Values("If-None-Match"), f.etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", f.contentType)
	h.Set("Content-Length", strconv.Itoa(len(f.body)))
	_, _ = w.Write(f.body)
}

// etagMatches reports whether an If-None-Match header names etag, by the
// weak comparison RFC 9110 prescribes for it, or is "*".
func etagMatches(headers []string, etag string) bool {
	for _, h := range headers {
		for _, tag := range strings.Split(h, ",") {
			tag = strings.TrimPrefix(strings.TrimSpace(tag), "W/")
			if tag == "*" || tag == etag {
				return true
			}
		}
	}
	return false
}
