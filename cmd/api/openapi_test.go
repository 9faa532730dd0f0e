package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"messageapi"
	"messageapi/httpapi"
	"messageapi/httpapi/apitest"
)

func TestServesTheDocument(t *testing.T) {
	t.Parallel()
	api := newTestAPI(t)

	y := api.get("/openapi.yaml")
	if y.status != http.StatusOK || y.header.Get("Content-Type") != "application/yaml" || !bytes.Equal(y.body, messageapi.OpenAPI()) {
		t.Fatalf("GET /openapi.yaml = %d %q, %d bytes; want 200, application/yaml and openapi.yaml",
			y.status, y.header.Get("Content-Type"), len(y.body))
	}
	j := api.get("/openapi.json")
	if j.status != http.StatusOK || j.header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /openapi.json = %d %q", j.status, j.header.Get("Content-Type"))
	}
	// The JSON is the same document: both load as valid OpenAPI, and
	// they say the same.
	fromYAML, err := apitest.LoadData(y.body)
	if err != nil {
		t.Fatal(err)
	}
	fromJSON, err := apitest.LoadData(j.body)
	if err != nil {
		t.Fatalf("/openapi.json: %v", err)
	}
	a, _ := json.Marshal(fromYAML)
	b, _ := json.Marshal(fromJSON)
	if !bytes.Equal(a, b) {
		t.Error("/openapi.json and /openapi.yaml differ")
	}

	for _, r := range []response{y, j} {
		if r.header.Get("ETag") == "" || !strings.Contains(r.header.Get("Cache-Control"), "max-age") {
			t.Errorf("ETag %q, Cache-Control %q; want both", r.header.Get("ETag"), r.header.Get("Cache-Control"))
		}
	}
	if y.header.Get("ETag") == j.header.Get("ETag") {
		t.Error("the YAML and the JSON have the same ETag")
	}

	// A cached copy is revalidated by its ETag, weak or strong.
	etag := j.header.Get("ETag")
	for header, want := range map[string]int{
		etag:                 http.StatusNotModified,
		"W/" + etag:          http.StatusNotModified,
		`"other", ` + etag:   http.StatusNotModified,
		"*":                  http.StatusNotModified,
		`"other"`:            http.StatusOK,
		y.header.Get("ETag"): http.StatusOK,
	} {
		req, _ := http.NewRequest(http.MethodGet, api.URL+"/openapi.json", nil)
		req.Header.Set("If-None-Match", header)
		r := api.exchange(req, nil)
		if r.status != want {
			t.Errorf("If-None-Match %s = %d, want %d", header, r.status, want)
		}
		if r.status == http.StatusNotModified && len(r.body) != 0 {
			t.Errorf("304 with a body of %d bytes", len(r.body))
		}
	}

	head := api.do(http.MethodHead, "/openapi.json", "", nil)
	if head.status != http.StatusOK || len(head.body) != 0 || head.header.Get("Content-Length") != strconv.Itoa(len(j.body)) {
		t.Errorf("HEAD = %d, %d bytes, Content-Length %q; want 200, no body, %d",
			head.status, len(head.body), head.header.Get("Content-Length"), len(j.body))
	}
	if r := api.get("/openapi.yaml?v=2"); r.status != http.StatusBadRequest {
		t.Errorf("a query parameter = %d, want 400", r.status)
	}
}

// TestServesTheDocumentWhileNotReady: the document needs no dependency.
func TestServesTheDocumentWhileNotReady(t *testing.T) {
	t.Parallel()
	api := newTestAPI(t, func(c *httpapi.Config) { c.Ready = func() bool { return false } })
	if r := api.get("/openapi.json"); r.status != http.StatusOK {
		t.Errorf("GET /openapi.json = %d, want 200", r.status)
	}
	if r := api.get("/messages"); r.status != http.StatusServiceUnavailable {
		t.Errorf("GET /messages = %d, want 503", r.status)
	}
}
