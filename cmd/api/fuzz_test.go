package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// The fuzz targets send arbitrary requests through the whole handler, down
// to the real PostgreSQL and Redis, and require an answer a client can use:
// never a 5xx, never a panic, always a JSON body, and an error body with a
// code and a message. Their seeds run as ordinary tests; make fuzz runs
// them as fuzzers.

// serve runs one request through h and checks the answer, also against
// the OpenAPI document.
func serve(t *testing.T, h http.Handler, req *http.Request) {
	t.Helper()
	reqBody, err := io.ReadAll(req.Body)
	if err != nil {
		t.Fatal(err)
	}
	req.Body = io.NopCloser(bytes.NewReader(reqBody))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code >= 500 {
		t.Fatalf("%s %s answered %d: %s", req.Method, req.URL, rec.Code, rec.Body)
	}
	c, err := contract()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Check(req, reqBody, rec.Result(), rec.Body.Bytes()); err != nil {
		t.Fatal(err)
	}
	if rec.Code == http.StatusNoContent {
		return
	}
	var body map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("%s %s answered %d with a body that is not a JSON object: %q", req.Method, req.URL, rec.Code, rec.Body)
	}
	if rec.Code >= 400 {
		if code, _ := body["code"].(string); code == "" {
			t.Fatalf("%d without a code: %s", rec.Code, rec.Body)
		}
		if msg, _ := body["error"].(string); msg == "" {
			t.Fatalf("%d without a message: %s", rec.Code, rec.Body)
		}
	}
}

func newRequest(t *testing.T, method, target, contentType, body string) *http.Request {
	t.Helper()
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return req
}

// messageID creates a message through h and returns its id, so reaction
// fuzzing reaches past the not-found check.
func messageID(t testing.TB, h http.Handler) string {
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/messages", strings.NewReader(`{"text":"fuzz","user_id":"f"}`))
	h.ServeHTTP(rec, req)
	var m struct{ ID string }
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil || m.ID == "" {
		t.Fatalf("create message: %d %s", rec.Code, rec.Body)
	}
	return m.ID
}

func FuzzCreateMessage(f *testing.F) {
	for _, seed := range []struct{ contentType, body string }{
		{"application/json", `{"text":"hello","user_id":"alice"}`},
		{"application/json", `{"id":"01a21b77-d171-76be-88ab-728585d7e80f","text":"hi","user_id":"u"}`},
		{"application/json", `{"id":"","text":"hi","user_id":"u"}`},
		{"application/json", `{"id":null,"text":"hi","user_id":"u"}`},
		{"application/json", `{"text":"a\u0000b","user_id":"u"}`},
		{"application/json", "{\"text\":\"\xff\xfe\",\"user_id\":\"u\"}"},
		{"application/json", `{"text":"  ","user_id":"u"}`},
		{"application/json", `{"text":["x"],"user_id":{"a":1}}`},
		{"application/json", `{"text":"x","user_id":"u"} trailing`},
		{"application/json; charset=utf-8", `{"text":1e999,"user_id":"u"}`},
		{"text/plain", `{"text":"x","user_id":"u"}`},
		{"", `null`},
		{"application/json", ``},
		{"application/vnd.api+json", `{"text":"x","user_id":"u","extra":null}`},
	} {
		f.Add(seed.contentType, seed.body)
	}
	h := newTestHandler(f)
	f.Fuzz(func(t *testing.T, contentType, body string) {
		if strings.ContainsAny(contentType, "\r\n") {
			return // not a header value a client can send
		}
		serve(t, h, newRequest(t, http.MethodPost, "/messages", contentType, body))
	})
}

func FuzzAddReaction(f *testing.F) {
	h := newTestHandler(f)
	id := messageID(f, h)
	for _, seed := range []struct{ id, body string }{
		{id, `{"type":"like","user_id":"bob"}`},
		{id, `{"type":"like","user_id":"bob","score":1000000}`},
		{id, `{"type":"like","user_id":"bob","score":0}`},
		{id, `{"type":"like","user_id":"bob","score":1.5}`},
		{id, `{"type":"like","user_id":"bob","score":"5"}`},
		{id, `{"type":"like","user_id":"bob","score":99999999999999999999}`},
		{id, `{"type":"LIKE","user_id":"bob"}`},
		{id, `{"type":"like","user_id":"bob","score":null}`},
		{"not-a-uuid", `{"type":"like","user_id":"bob"}`},
		{"00000000-0000-0000-0000-000000000000", `{"type":"like","user_id":"bob"}`},
	} {
		f.Add(seed.id, seed.body)
	}
	f.Fuzz(func(t *testing.T, messageID, body string) {
		serve(t, h, newRequest(t, http.MethodPost, "/messages/"+url.PathEscape(messageID)+"/reactions", "application/json", body))
	})
}

func FuzzListMessages(f *testing.F) {
	for _, seed := range []string{
		"", "limit=10", "page=2", "limit=100&page=101", "page=1&cursor=x", "cursor=bQGiG3fRcXa-iKtyhYXX6A8",
		"cursor=cgAAAaIbd9H6AaIbd9H6fQ-jHQdMuCVMRw", "limit=-1", "limit=1e3", "page=9223372036854775807",
		"limit=10&limit=10", "%zz", "x=1",
	} {
		f.Add(seed)
	}
	h := newTestHandler(f)
	f.Fuzz(func(t *testing.T, rawQuery string) {
		req := newRequest(t, http.MethodGet, "/messages", "", "")
		req.URL.RawQuery = rawQuery
		serve(t, h, req)
	})
}

func FuzzListReactions(f *testing.F) {
	h := newTestHandler(f)
	id := messageID(f, h)
	for _, seed := range []string{
		"", "limit=1", "type=like", "user_id=bob", "type=like&user_id=bob&limit=5",
		"cursor=cgAAAaIbd9H6AaIbd9H6fQ-jHQdMuCVMRw", "cursor=bQGiG3fRcXa-iKtyhYXX6A8", "type=", "user_id=%00",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, rawQuery string) {
		req := newRequest(t, http.MethodGet, "/messages/"+id+"/reactions", "", "")
		req.URL.RawQuery = rawQuery
		serve(t, h, req)
	})
}
