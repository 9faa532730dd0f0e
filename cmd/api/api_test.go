package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"messageapi/cmd/internal/daemon"
	"messageapi/httpapi"
	"messageapi/httpapi/apitest"
	"messageapi/postgres"
	"messageapi/postgres/postgrestest"
	"messageapi/redis"
	"messageapi/redis/redistest"
	"messageapi/sse"
)

// testAPI is the API's HTTP handler on a schema and key prefix of its own.
type testAPI struct {
	*httptest.Server
	t *testing.T
}

func newTestAPI(t *testing.T, options ...func(*httpapi.Config)) *testAPI {
	t.Helper()
	srv := httptest.NewServer(newTestHandler(t, options...))
	t.Cleanup(srv.Close)
	return &testAPI{Server: srv, t: t}
}

// newTestHandler returns the API's handler on a migrated schema and a Redis
// key prefix of its own.
func newTestHandler(tb testing.TB, options ...func(*httpapi.Config)) http.Handler {
	tb.Helper()
	a := newTestApp(tb, postgrestest.NewDB(tb), redistest.NewClient(tb),
		sse.Config{MaxClients: 4, Buffer: 16, Heartbeat: time.Second, Block: 50 * time.Millisecond})
	a.startBackground(tb)
	for a.hub.Position() == "" { // the hub has found its place in the feed
		time.Sleep(5 * time.Millisecond)
	}
	return a.handler(options...)
}

// newTestApp wires the API on db and rc, with the hub configured by hubCfg;
// its background work is not started.
func newTestApp(tb testing.TB, db *postgres.DB, rc *redis.Client, hubCfg sse.Config) *app {
	tb.Helper()
	a, err := newApp(config{cachePages: 5, maxReactionTypes: 3, Common: daemon.Common{CacheTTL: time.Minute}, sse: hubCfg},
		db, db, rc, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	if err != nil {
		tb.Fatal(err)
	}
	return a
}

// startBackground runs the app's background work, as the program does,
// until the test ends.
func (a *app) startBackground(tb testing.TB) {
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- daemon.RunComponents(ctx, a.background(time.Second)) }()
	tb.Cleanup(func() {
		a.hub.Close()
		stop()
		if err := <-done; err != nil {
			tb.Error(err)
		}
	})
}

// handler is the app's HTTP handler, as the tests configure it.
func (a *app) handler(options ...func(*httpapi.Config)) http.Handler {
	cfg := httpapi.Config{
		Log: slog.New(slog.DiscardHandler), Metrics: httpapi.NewMetrics(prometheus.NewRegistry()), AccessLevel: slog.LevelDebug,
		Ready: func() bool { return true }, RequestTimeout: 5 * time.Second,
	}
	for _, o := range options {
		o(&cfg)
	}
	return a.server.Handler(cfg)
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("response is not a JSON object: %v: %s", err, r.body)
	}
	return m
}

func (a *testAPI) do(method, path, contentType string, body io.Reader) response {
	a.t.Helper()
	header := http.Header{}
	if contentType != "" {
		header.Set("Content-Type", contentType)
	}
	return a.send(method, path, header, body)
}

// send makes a request with the given headers.
func (a *testAPI) send(method, path string, header http.Header, body io.Reader) response {
	a.t.Helper()
	var reqBody []byte
	if body != nil {
		var err error
		if reqBody, err = io.ReadAll(body); err != nil {
			a.t.Fatal(err)
		}
	}
	req, err := http.NewRequest(method, a.URL+path, bytes.NewReader(reqBody))
	if err != nil {
		a.t.Fatal(err)
	}
	req.Header = header
	return a.exchange(req, reqBody)
}

// exchange makes the request, whose body is reqBody, and checks the
// exchange against the OpenAPI document.
func (a *testAPI) exchange(req *http.Request, reqBody []byte) response {
	a.t.Helper()
	resp, b := apitest.Exchange(a.t, a.Client(), req, reqBody)
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// contract is the checker of the OpenAPI document, loaded once per test
// binary.
var contract = sync.OnceValues(apitest.NewChecker)

func (a *testAPI) post(path, body string) response {
	a.t.Helper()
	return a.do(http.MethodPost, path, "application/json", strings.NewReader(body))
}

func (a *testAPI) get(path string) response {
	a.t.Helper()
	return a.do(http.MethodGet, path, "", nil)
}

// TestCreateMessageRejectsBadInput checks every way a POST /messages can be
// wrong: each gets its status and code, names the field where there is one,
// and stores nothing.
func TestCreateMessageRejectsBadInput(t *testing.T) {
	t.Parallel()
	api := newTestAPI(t)
	tests := []struct {
		name        string
		contentType string
		body        string
		status      int
		code        string
		field       string
	}{
		{"empty body", "application/json", ``, 400, "invalid_argument", ""},
		{"malformed JSON", "application/json", `{"text": "hi",`, 400, "invalid_argument", ""},
		{"syntax error", "application/json", `{"text" "hi"}`, 400, "invalid_argument", ""},
		{"not an object", "application/json", `["hi"]`, 400, "invalid_argument", ""},
		{"trailing data", "application/json", `{"text":"hi","user_id":"u"} {}`, 400, "invalid_argument", ""},
		{"trailing garbage", "application/json", `{"text":"hi","user_id":"u"}x`, 400, "invalid_argument", ""},
		{"unknown field", "application/json", `{"text":"hi","user_id":"u","extra":1}`, 400, "invalid_argument", "extra"},
		{"missing text", "application/json", `{"user_id":"u"}`, 400, "invalid_argument", "text"},
		{"empty text", "application/json", `{"text":"","user_id":"u"}`, 400, "invalid_argument", "text"},
		{"blank text", "application/json", `{"text":" \t\n ","user_id":"u"}`, 400, "invalid_argument", "text"},
		{"NUL in text", "application/json", `{"text":"a\u0000b","user_id":"u"}`, 400, "invalid_argument", "text"},
		{"text too long", "application/json", `{"text":"` + strings.Repeat("é", 5001) + `","user_id":"u"}`, 400, "invalid_argument", "text"},
		{"text not a string", "application/json", `{"text":5,"user_id":"u"}`, 400, "invalid_argument", "text"},
		{"missing user_id", "application/json", `{"text":"hi"}`, 400, "invalid_argument", "user_id"},
		{"bad user_id", "application/json", `{"text":"hi","user_id":"a b"}`, 400, "invalid_argument", "user_id"},
		{"user_id too long", "application/json", `{"text":"hi","user_id":"` + strings.Repeat("u", 129) + `"}`, 400, "invalid_argument", "user_id"},
		{"id not a UUID", "application/json", `{"id":"nope","text":"hi","user_id":"u"}`, 400, "invalid_argument", "id"},
		{"id not a v7", "application/json", `{"id":"6ba7b810-9dad-41d1-80b4-00c04fd430c8","text":"hi","user_id":"u"}`, 400, "invalid_argument", "id"},
		{"id from the far past", "application/json", `{"id":"01890a5d-ac96-774b-bcce-b302099a8057","text":"hi","user_id":"u"}`, 400, "invalid_argument", "id"},
		// An id a minute ahead would pin the message above every message
		// posted in that minute.
		{"id from the near future", "application/json", `{"id":"` + uuidAt(time.Now().Add(time.Minute)) + `","text":"hi","user_id":"u"}`, 400, "invalid_argument", "id"},
		{"form content type", "application/x-www-form-urlencoded", `text=hi&user_id=u`, 415, "unsupported_media_type", ""},
		{"text/plain", "text/plain", `{"text":"hi","user_id":"u"}`, 415, "unsupported_media_type", ""},
		{"too large", "application/json", `{"text":"` + strings.Repeat("a", 70<<10) + `","user_id":"u"}`, 413, "payload_too_large", ""},
		{"field name in another case", "application/json", `{"Text":"hi","user_id":"u"}`, 400, "invalid_argument", "Text"},
		{"field given twice", "application/json", `{"text":"hi","user_id":"u","user_id":"v"}`, 400, "invalid_argument", "user_id"},
		{"only invisible characters", "application/json", `{"text":"\u200b\u2060\ufeff","user_id":"u"}`, 400, "invalid_argument", "text"},
		{"charset other than UTF-8", "application/json; charset=latin1", `{"text":"hi","user_id":"u"}`, 415, "unsupported_media_type", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := api.do(http.MethodPost, "/messages", tt.contentType, strings.NewReader(tt.body))
			if resp.status != tt.status {
				t.Fatalf("status = %d, want %d; body %s", resp.status, tt.status, resp.body)
			}
			body := resp.json(t)
			if body["code"] != tt.code || body["error"] == "" {
				t.Errorf("body = %s, want code %q and an error message", resp.body, tt.code)
			}
			if tt.field != "" {
				fields, _ := body["fields"].(map[string]any)
				if reason, _ := fields[tt.field].(string); reason == "" {
					t.Errorf("fields = %v, want a reason for %q", body["fields"], tt.field)
				}
			}
		})
	}
	list := api.get("/messages").json(t)
	if msgs := list["messages"].([]any); len(msgs) != 0 {
		t.Errorf("bad requests stored %d messages", len(msgs))
	}
}

// uuidAt returns a UUIDv7 whose time is at.
func uuidAt(at time.Time) string {
	u := uuid.Must(uuid.NewV7())
	ms := uint64(at.UnixMilli())
	for i := range 6 {
		u[i] = byte(ms >> (8 * (5 - i)))
	}
	return u.String()
}

func TestCreateMessageAcceptsEdgeInput(t *testing.T) {
	t.Parallel()
	api := newTestAPI(t)
	tests := []struct{ name, contentType, body, wantText string }{
		{"json with charset", "application/json; charset=utf-8", `{"text":"hi","user_id":"u"}`, "hi"},
		{"no content type", "", `{"text":"hi","user_id":"u"}`, "hi"},
		{"5000 characters", "application/json", `{"text":"` + strings.Repeat("é", 5000) + `","user_id":"u"}`, strings.Repeat("é", 5000)},
		{"invalid UTF-8 stored as valid text", "application/json", "{\"text\":\"a\xffb\",\"user_id\":\"u\"}", "a\uFFFDb"},
		{"trailing white space after the object", "application/json", "{\"text\":\"hi\",\"user_id\":\"u\"}\n", "hi"},
		{"an id from a few minutes ago", "application/json", `{"id":"` + uuidAt(time.Now().Add(-4*time.Minute)) + `","text":"late","user_id":"u"}`, "late"},
		{"an id a second ahead (clock skew)", "application/json", `{"id":"` + uuidAt(time.Now().Add(time.Second)) + `","text":"skewed","user_id":"u"}`, "skewed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := api.do(http.MethodPost, "/messages", tt.contentType, strings.NewReader(tt.body))
			if resp.status != http.StatusCreated {
				t.Fatalf("status = %d, want 201; body %s", resp.status, resp.body)
			}
			m := resp.json(t)
			if m["text"] != tt.wantText {
				t.Errorf("text = %q, want %q", m["text"], tt.wantText)
			}
			got := api.get(resp.header.Get("Location")).json(t)
			if got["text"] != tt.wantText {
				t.Errorf("stored text = %q, want %q", got["text"], tt.wantText)
			}
		})
	}
}

func TestListMessagesRejectsBadParameters(t *testing.T) {
	t.Parallel()
	api := newTestAPI(t)
	tests := []struct{ query, field string }{
		{"limit=0", "limit"},
		{"limit=101", "limit"},
		{"limit=-1", "limit"},
		{"limit=ten", "limit"},
		{"limit=", "limit"},
		{"limit=1.5", "limit"},
		{"page=0", "page"},
		{"page=x", "page"},
		{"page=99999999999999999999", "page"},
		{"page=1002", "page"}, // skips more than 10,000 messages
		{"page=1&cursor=AQ", "page"},
		{"cursor=", "cursor"},
		{"cursor=!!!", "cursor"},
		{"cursor=bm90LWEtY3Vyc29y", "cursor"},
		{"limit=10&limit=20", "limit"},
		{"sort=asc", "sort"},
		{"%zz", ""},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			resp := api.get("/messages?" + tt.query)
			if resp.status != http.StatusBadRequest {
				t.Fatalf("status = %d, want 400; body %s", resp.status, resp.body)
			}
			body := resp.json(t)
			if body["code"] != "invalid_argument" {
				t.Errorf("code = %v, want invalid_argument", body["code"])
			}
			if tt.field != "" {
				if fields, _ := body["fields"].(map[string]any); fields[tt.field] == nil {
					t.Errorf("fields = %v, want a reason for %q", body["fields"], tt.field)
				}
			}
		})
	}
}

func TestRoutesAnswerInJSON(t *testing.T) {
	t.Parallel()
	api := newTestAPI(t)
	tests := []struct {
		method, path string
		status       int
		code, allow  string
	}{
		{"GET", "/nope", 404, "not_found", ""},
		{"GET", "/messages/", 404, "not_found", ""},
		{"GET", "/messages/not-a-uuid", 400, "invalid_argument", ""},
		{"GET", "/messages/x0192f0a4-8a4b-7cc1-9e8a-5a3b1c2d3e4fy", 400, "invalid_argument", ""},
		{"GET", "/messages/x0192f0a4-8a4b-7cc1-9e8a-5a3b1c2d3e4fy/reactions", 400, "invalid_argument", ""},
		{"GET", "/messages/0192f0a4-8a4b-7cc1-9e8a-5a3b1c2d3e4f", 404, "not_found", ""},
		{"PUT", "/messages", 405, "method_not_allowed", "GET, HEAD, POST, OPTIONS"},
		{"PUT", "/messages/0192f0a4-8a4b-7cc1-9e8a-5a3b1c2d3e4f", 405, "method_not_allowed", "GET, HEAD, PATCH, DELETE, OPTIONS"},
		{"BREW", "/messages", 405, "method_not_allowed", "GET, HEAD, POST, OPTIONS"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			resp := api.do(tt.method, tt.path, "", nil)
			if resp.status != tt.status {
				t.Fatalf("status = %d, want %d; body %s", resp.status, tt.status, resp.body)
			}
			if code := resp.json(t)["code"]; code != tt.code {
				t.Errorf("code = %v, want %q", code, tt.code)
			}
			if got := resp.header.Get("Allow"); got != tt.allow {
				t.Errorf("Allow = %q, want %q", got, tt.allow)
			}
		})
	}
}

func TestRequestIDIsHonouredOrMade(t *testing.T) {
	t.Parallel()
	api := newTestAPI(t)
	req, _ := http.NewRequest(http.MethodGet, api.URL+"/messages", nil)
	req.Header.Set("X-Request-ID", "trace-123")
	resp := api.exchange(req, nil)
	if got := resp.header.Get("X-Request-ID"); got != "trace-123" {
		t.Errorf("X-Request-ID = %q, want the client's", got)
	}
	req.Header.Set("X-Request-ID", "bad id\twith spaces")
	resp = api.exchange(req, nil)
	if got := resp.header.Get("X-Request-ID"); got == "" || strings.ContainsAny(got, " \t") {
		t.Errorf("X-Request-ID = %q, want a generated plain id", got)
	}
}

func TestIdempotentCreate(t *testing.T) {
	t.Parallel()
	api := newTestAPI(t)
	first := api.post("/messages", `{"text":"hi","user_id":"u"}`)
	if first.status != http.StatusCreated {
		t.Fatalf("status = %d; body %s", first.status, first.body)
	}
	id := first.json(t)["id"].(string)
	body := `{"id":"` + id + `","text":"hi","user_id":"u"}`
	retry := api.post("/messages", body)
	if retry.status != http.StatusOK || !bytes.Equal(retry.body, first.body) {
		t.Errorf("retry = %d %s, want 200 with the stored message %s", retry.status, retry.body, first.body)
	}
	other := api.post("/messages", `{"id":"`+id+`","text":"changed","user_id":"u"}`)
	if other.status != http.StatusConflict || other.json(t)["code"] != "conflict" {
		t.Errorf("other content = %d %s, want 409 conflict", other.status, other.body)
	}
	msgs := api.get("/messages").json(t)["messages"].([]any)
	if len(msgs) != 1 {
		t.Errorf("%d messages stored, want 1", len(msgs))
	}
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	api := newTestAPI(t, func(c *httpapi.Config) { c.RateLimit, c.RateWindow = 3, time.Minute })
	for i := range 3 {
		if r := api.get("/messages"); r.status != http.StatusOK {
			t.Fatalf("request %d = %d, want 200 within the limit", i+1, r.status)
		}
	}
	r := api.get("/messages")
	if r.status != http.StatusTooManyRequests || r.json(t)["code"] != "rate_limited" {
		t.Fatalf("over the limit = %d %s, want 429 rate_limited", r.status, r.body)
	}
	if r.header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
}

func TestServerErrorsNeverLeakDetails(t *testing.T) {
	t.Parallel()
	api := newTestAPI(t, func(c *httpapi.Config) {
		c.Ready = func() bool { return false } // not migrated yet: every route is unavailable
	})
	r := api.post("/messages", `{"text":"hi","user_id":"u"}`)
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
		t.Fatalf("status = %d (Retry-After %q), want 503 with Retry-After", r.status, r.header.Get("Retry-After"))
	}
	if body := r.json(t); body["code"] != "unavailable" || strings.Contains(string(r.body), "migrated") {
		t.Errorf("body = %s, want code unavailable and no internal detail", r.body)
	}
}

func TestMoreRequestRules(t *testing.T) {
	t.Parallel()
	api := newTestAPI(t)
	created := api.post("/messages", `{"text":"hi","user_id":"u"}`)
	id := created.json(t)["id"].(string)

	// Routes that take no query parameters refuse them.
	for _, r := range []response{
		api.post("/messages?foo=1", `{"text":"hi","user_id":"u"}`),
		api.get("/messages/" + id + "?limit=1"),
		api.post("/messages/"+id+"/reactions?foo=1", `{"type":"like","user_id":"u"}`),
	} {
		if r.status != http.StatusBadRequest {
			t.Errorf("query parameter on a route without any: %d %s, want 400", r.status, r.body)
		}
	}

	// Two Content-Type headers are one too many.
	body := []byte(`{"text":"hi","user_id":"u"}`)
	req, _ := http.NewRequest(http.MethodPost, api.URL+"/messages", bytes.NewReader(body))
	req.Header.Add("Content-Type", "application/json")
	req.Header.Add("Content-Type", "text/plain")
	if r := api.exchange(req, body); r.status != http.StatusUnsupportedMediaType {
		t.Errorf("two Content-Types = %d, want 415", r.status)
	}

	// HEAD answers wherever GET does; OPTIONS says what is allowed.
	if r := api.do(http.MethodHead, "/messages/"+id, "", nil); r.status != http.StatusOK || len(r.body) != 0 {
		t.Errorf("HEAD = %d with %d bytes, want 200 and no body", r.status, len(r.body))
	}
	if r := api.do(http.MethodOptions, "/messages/"+id+"/reactions", "", nil); r.status != http.StatusNoContent || r.header.Get("Allow") != "GET, HEAD, POST, OPTIONS" {
		t.Errorf("OPTIONS = %d, Allow %q", r.status, r.header.Get("Allow"))
	}
}

// TestEncodedPathSegments: a client that percent-encodes path segments, as
// encodeURIComponent does, reaches the same message and reaction.
func TestEncodedPathSegments(t *testing.T) {
	t.Parallel()
	api := newTestAPI(t)
	id := api.post("/messages", `{"text":"hi","user_id":"u"}`).json(t)["id"].(string)
	if r := api.post("/messages/"+id+"/reactions", `{"type":"+1","user_id":"u"}`); r.status != http.StatusCreated {
		t.Fatalf("POST +1 = %d %s", r.status, r.body)
	}
	encodedID := "%" + fmt.Sprintf("%X", id[0]) + id[1:] // the first character percent-encoded
	if r := api.get("/messages/" + encodedID); r.status != http.StatusOK || r.json(t)["id"] != id {
		t.Errorf("GET with an encoded id = %d %s", r.status, r.body)
	}
	if r := api.do(http.MethodDelete, "/messages/"+encodedID+"/reactions/%2B1?user_id=u", "", nil); r.status != http.StatusNoContent {
		t.Errorf("DELETE …/reactions/%%2B1 = %d %s, want 204", r.status, r.body)
	}
	if r := api.do(http.MethodDelete, "/messages/"+id+"/reactions/%2B1?user_id=u", "", nil); r.status != http.StatusNotFound {
		t.Errorf("second DELETE = %d %s, want 404", r.status, r.body)
	}
}

// TestManyUnknownParametersGetASmallError: 2,000 unknown query parameters
// are refused with an error that lists a bounded number of them.
func TestManyUnknownParametersGetASmallError(t *testing.T) {
	t.Parallel()
	api := newTestAPI(t)
	var q strings.Builder
	for i := range 2000 {
		fmt.Fprintf(&q, "&unknown%d=1", i)
	}
	r := api.get("/messages?" + q.String()[1:])
	if r.status != http.StatusBadRequest || len(r.body) > 4096 {
		t.Errorf("2000 unknown parameters = %d with a %d-byte body; want 400 and at most 4 KiB", r.status, len(r.body))
	}
}

// TestReactionTypeCapAndUniqueReactions: the test API caps a message at 3
// reaction types; enforce_unique leaves a user one reaction.
func TestReactionTypeCapAndUniqueReactions(t *testing.T) {
	t.Parallel()
	api := newTestAPI(t)
	id := api.post("/messages", `{"text":"hi","user_id":"u"}`).json(t)["id"].(string)
	reactions := "/messages/" + id + "/reactions"
	for _, typ := range []string{"a", "b", "c"} {
		if r := api.post(reactions, `{"type":"`+typ+`","user_id":"u1"}`); r.status != http.StatusCreated {
			t.Fatalf("type %s = %d %s", typ, r.status, r.body)
		}
	}
	r := api.post(reactions, `{"type":"d","user_id":"u2"}`)
	if r.status != http.StatusUnprocessableEntity || r.json(t)["code"] != "limit_exceeded" {
		t.Fatalf("a fourth type = %d %s, want 422 limit_exceeded", r.status, r.body)
	}
	if fields, _ := r.json(t)["fields"].(map[string]any); fields["type"] == nil {
		t.Errorf("the 422 does not name the type: %s", r.body)
	}
	if list := api.get(reactions + "?user_id=u2").json(t)["reactions"].([]any); len(list) != 0 {
		t.Errorf("the refused post stored %d reactions", len(list))
	}

	// u1 holds a, b and c; a unique post of a leaves only a.
	if r := api.post(reactions, `{"type":"a","user_id":"u1","score":3,"enforce_unique":true}`); r.status != http.StatusOK {
		t.Fatalf("unique re-post = %d %s, want 200 (the reaction existed)", r.status, r.body)
	}
	list := api.get(reactions + "?user_id=u1").json(t)["reactions"].([]any)
	if len(list) != 1 || list[0].(map[string]any)["type"] != "a" {
		t.Errorf("u1's reactions after a unique post = %v, want only a", list)
	}
	if r := api.post(reactions, `{"type":"a","user_id":"u1","enforce_unique":"yes"}`); r.status != http.StatusBadRequest {
		t.Errorf("enforce_unique as a string = %d, want 400", r.status)
	}
}

// TestMetricsLabelEveryMatchedPath: OPTIONS (204) and a wrong method (405)
// on a route are counted under its pattern; only unknown paths are
// unmatched.
func TestMetricsLabelEveryMatchedPath(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	api := newTestAPI(t, func(c *httpapi.Config) { c.Metrics = httpapi.NewMetrics(reg) })
	api.do(http.MethodOptions, "/messages", "", nil)
	api.do(http.MethodPut, "/messages", "", nil)
	api.do(http.MethodPut, "/messages/0192f0a4-8a4b-7cc1-9e8a-5a3b1c2d3e4f", "", nil)
	api.get("/nowhere")
	got := requestCounts(t, reg)
	for _, want := range []string{"OPTIONS /messages 204", "PUT /messages 405", "PUT /messages/{id} 405", "GET unmatched 404"} {
		if got[want] == 0 {
			t.Errorf("no request counted as %q; counted %v", want, got)
		}
	}
}

// requestCounts returns the requests reg has counted, by "method route
// code".
func requestCounts(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range families {
		if mf.GetName() != "messageapi_http_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			got[labels["method"]+" "+labels["route"]+" "+labels["code"]] = m.GetCounter().GetValue()
		}
	}
	return got
}

// rehub gives a a hub of its own on feed, configured by cfg, before its
// background work starts, so a test can watch what the hub reads.
func (a *app) rehub(feed sse.Feed, cfg sse.Config) {
	a.hub = sse.NewHub(feed, slog.New(slog.DiscardHandler), prometheus.NewRegistry(), cfg)
	a.server.Events = a.hub
}
