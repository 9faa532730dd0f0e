package apitest

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestDocumentIsValidOpenAPI(t *testing.T) {
	doc, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if !doc.IsOpenAPI31OrLater() {
		t.Errorf("openapi = %q, want 3.1", doc.OpenAPI)
	}
	if doc.Info.Version == "" {
		t.Error("info.version is empty")
	}
}

const (
	id      = "01a21b77-d171-76be-88ab-728585d7e80f"
	message = `{"id":"` + id + `","channel_id":"default","text":"hi","user_id":"u","created_at":"2026-11-27T05:26:06.961Z",` +
		`"reaction_count":0,"reaction_counts":{},"reaction_scores":{},"reaction_groups":{},"reactions":[]}`
)

// exchange is a request and the answer it got, as a Checker sees them.
type exchange struct {
	method, path, contentType, body string
	status                          int
	header                          map[string]string
	response                        string
}

func (x exchange) check(c *Checker) error {
	req, err := http.NewRequest(x.method, "http://api.test"+x.path, strings.NewReader(x.body))
	if err != nil {
		panic(err)
	}
	if x.contentType != "" {
		req.Header.Set("Content-Type", x.contentType)
	}
	resp := &http.Response{StatusCode: x.status, Header: http.Header{}, Body: io.NopCloser(bytes.NewReader([]byte(x.response)))}
	for k, v := range x.header {
		resp.Header.Set(k, v)
	}
	return c.Check(req, []byte(x.body), resp, []byte(x.response))
}

// headers returns the headers every answer has, plus the pairs given.
func headers(kv ...string) map[string]string {
	h := map[string]string{"X-Request-ID": "abc123"}
	for i := 0; i < len(kv); i += 2 {
		h[kv[i]] = kv[i+1]
	}
	return h
}

func jsonHeaders(kv ...string) map[string]string {
	return headers(append([]string{"Content-Type", "application/json"}, kv...)...)
}

func TestCheckerAcceptsWhatTheDocumentDescribes(t *testing.T) {
	c, err := NewChecker()
	if err != nil {
		t.Fatal(err)
	}
	for name, x := range map[string]exchange{
		"a message created": {"POST", "/messages", "application/json", `{"text":"hi","user_id":"u"}`,
			201, jsonHeaders("Location", "/messages/"+id), message},
		"a body without Content-Type is JSON": {"POST", "/messages", "", `{"text":"hi","user_id":"u"}`,
			201, jsonHeaders("Location", "/messages/"+id), message},
		"a bad field refused": {"POST", "/messages", "application/json", `{"text":"hi","user_id":"a b"}`,
			400, jsonHeaders(), `{"error":"request is invalid","code":"invalid_argument","fields":{"user_id":"bad"}}`},
		"a media type refused": {"POST", "/messages", "text/plain", `{"text":"hi","user_id":"u"}`,
			415, jsonHeaders(), `{"error":"Content-Type must be JSON","code":"unsupported_media_type"}`},
		"a valid request refused by a rule the document cannot state": {"POST", "/messages", "application/json", `{"text":"\u200b","user_id":"u"}`,
			400, jsonHeaders(), `{"error":"request is invalid","code":"invalid_argument","fields":{"text":"blank"}}`},
		"a page": {"GET", "/messages?limit=1", "", "",
			200, jsonHeaders(), `{"messages":[` + message + `],"next_cursor":"abc"}`},
		"a path id in braces": {"GET", "/messages/%7B" + id + "%7D", "", "",
			200, jsonHeaders(), message},
		"an unavailable dependency": {"GET", "/messages", "", "",
			503, jsonHeaders("Retry-After", "1"), `{"error":"database is temporarily unavailable","code":"unavailable"}`},
		"a reaction deleted": {"DELETE", "/messages/" + id + "/reactions/like?user_id=u", "", "",
			204, headers(), ""},
		"an unknown path": {"GET", "/nothing", "", "",
			404, jsonHeaders(), `{"error":"no route","code":"not_found"}`},
		"a method not allowed": {"PATCH", "/messages", "", "",
			405, jsonHeaders("Allow", "GET, HEAD, POST, OPTIONS"), `{"error":"no","code":"method_not_allowed"}`},
		"OPTIONS": {"OPTIONS", "/messages/" + id, "", "",
			204, headers("Allow", "GET, HEAD, PATCH, DELETE, OPTIONS"), ""},
		"HEAD": {"HEAD", "/messages/" + id, "", "",
			200, jsonHeaders(), ""},
		"HEAD where only DELETE is": {"HEAD", "/messages/" + id + "/reactions/like", "", "",
			405, jsonHeaders("Allow", "DELETE, OPTIONS"), ""},
		"HEAD on an unknown path": {"HEAD", "/nothing", "", "",
			404, jsonHeaders(), ""},
		"the document, not modified": {"GET", "/openapi.json", "", "",
			304, headers("ETag", `"abc"`), ""},
	} {
		if err := x.check(c); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestCheckerRefusesWhatTheDocumentDoesNotDescribe(t *testing.T) {
	c, err := NewChecker()
	if err != nil {
		t.Fatal(err)
	}
	for name, tt := range map[string]struct {
		x    exchange
		want string // in the error
	}{
		"no Location": {exchange{"POST", "/messages", "application/json", `{"text":"hi","user_id":"u"}`,
			201, jsonHeaders(), message}, `"Location"`},
		"no X-Request-ID": {exchange{"GET", "/messages/" + id, "", "",
			200, map[string]string{"Content-Type": "application/json"}, message}, `"X-Request-ID"`},
		"a field the document does not describe": {exchange{"GET", "/messages/" + id, "", "",
			200, jsonHeaders(), strings.Replace(message, `"text"`, `"secret":1,"text"`, 1)}, "secret"},
		"a time without milliseconds": {exchange{"GET", "/messages/" + id, "", "",
			200, jsonHeaders(), strings.Replace(message, ".961Z", "Z", 1)}, "created_at"},
		"a bad request accepted": {exchange{"POST", "/messages", "application/json", `{"text":"hi","user_id":"a b"}`,
			201, jsonHeaders("Location", "/messages/"+id), message}, "the request breaks the document"},
		"an unknown field accepted": {exchange{"POST", "/messages", "application/json", `{"text":"hi","user_id":"u","admin":true}`,
			201, jsonHeaders("Location", "/messages/"+id), message}, "the request breaks the document"},
		"an error without its code": {exchange{"POST", "/messages", "application/json", `{"text":"hi"}`,
			400, jsonHeaders(), `{"error":"request is invalid"}`}, "code"},
		"an error with another status's code": {exchange{"GET", "/messages/" + id, "", "",
			404, jsonHeaders(), `{"error":"gone","code":"invalid_argument"}`}, "code"},
		"an error in plain text": {exchange{"GET", "/messages/" + id, "", "",
			404, headers("Content-Type", "text/plain"), "404 page not found"}, "text/plain"},
		"an undocumented status": {exchange{"GET", "/messages/" + id, "", "",
			409, jsonHeaders(), `{"error":"x","code":"conflict"}`}, "409"},
		"503 without Retry-After": {exchange{"GET", "/messages", "", "",
			503, jsonHeaders(), `{"error":"down","code":"unavailable"}`}, "Retry-After"},
		"a body on 204": {exchange{"DELETE", "/messages/" + id + "/reactions/like?user_id=u", "", "",
			204, headers(), "{}"}, "body"},
		"a wrong Allow": {exchange{"PATCH", "/messages", "", "",
			405, jsonHeaders("Allow", "GET"), `{"error":"no","code":"method_not_allowed"}`}, "Allow"},
		"OPTIONS with a wrong Allow": {exchange{"OPTIONS", "/messages/" + id, "", "",
			204, headers("Allow", "GET, POST, OPTIONS"), ""}, "Allow"},
		"an unknown path answered 200": {exchange{"GET", "/nothing", "", "",
			200, jsonHeaders(), `{}`}, "200"},
		"HEAD without X-Request-ID": {exchange{"HEAD", "/messages/" + id, "", "",
			200, map[string]string{}, ""}, "X-Request-ID"},
		"HEAD with a body": {exchange{"HEAD", "/messages/" + id, "", "",
			200, jsonHeaders(), message}, "body"},
		"304 without ETag": {exchange{"GET", "/openapi.json", "", "",
			304, headers(), ""}, "ETag"},
	} {
		err := tt.x.check(c)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want an error about %s", name, err, tt.want)
			continue
		}
		t.Logf("%s: %v", name, err)
	}
}
