package messageapi_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/google/uuid"

	"messageapi/postgres/postgrestest"
	"messageapi/redis/redistest"
)

// stack is the real api and worker binaries on a fresh schema and Redis
// key prefix of their own.
type stack struct {
	api, worker *proc
	base        string // the API's base URL
	admin       string // the API's admin base URL
	env         []string
}

func startStack(t *testing.T, extraEnv ...string) *stack {
	t.Helper()
	env := append([]string{
		"DATABASE_URL=" + postgrestest.NewSchema(t),
		"REDIS_URL=" + redistest.URL(),
		"REDIS_PREFIX=" + redistest.NewPrefix(t),
		"ADDR=127.0.0.1:0",
		"ADMIN_ADDR=127.0.0.1:0",
		"LOG_LEVEL=debug",
	}, extraEnv...)
	s := &stack{env: env}
	s.api = startProc(t, "api", env)
	s.worker = startProc(t, "worker", env)
	s.api.waitReady()
	s.worker.waitReady()
	s.base = "http://" + s.api.addr("api")
	s.admin = "http://" + s.api.addr("admin")
	return s
}

// reply is an HTTP response with its body decoded as JSON.
type reply struct {
	status int
	header http.Header
	raw    string
	body   map[string]any
}

func call(t *testing.T, method, url, contentType, body string) reply {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	r := reply{status: resp.StatusCode, header: resp.Header, raw: string(b)}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(b, &r.body); err != nil {
			t.Fatalf("%s %s: body is not a JSON object: %s", method, url, b)
		}
	}
	return r
}

func (s *stack) get(t *testing.T, path string) reply {
	t.Helper()
	return call(t, http.MethodGet, s.base+path, "", "")
}

func (s *stack) post(t *testing.T, path, body string) reply {
	t.Helper()
	return call(t, http.MethodPost, s.base+path, "application/json", body)
}

func expect(t *testing.T, r reply, status int) reply {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d; body %s", r.status, status, r.raw)
	}
	return r
}

func expectError(t *testing.T, r reply, status int, code string, fields ...string) {
	t.Helper()
	expect(t, r, status)
	if r.body["code"] != code || r.body["error"] == "" {
		t.Errorf("body = %s, want code %q with an error message", r.raw, code)
	}
	got, _ := r.body["fields"].(map[string]any)
	for _, f := range fields {
		if got[f] == nil {
			t.Errorf("fields = %v, want a reason for %q", got, f)
		}
	}
}

var timeFormat = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$`)

func messagesOf(t *testing.T, r reply) []map[string]any {
	t.Helper()
	list, ok := r.body["messages"].([]any)
	if !ok {
		t.Fatalf("no messages array in %s", r.raw)
	}
	out := make([]map[string]any, len(list))
	for i, m := range list {
		out[i] = m.(map[string]any)
	}
	return out
}

func textsOf(t *testing.T, r reply) string {
	t.Helper()
	var s []string
	for _, m := range messagesOf(t, r) {
		s = append(s, m["text"].(string))
	}
	return strings.Join(s, ",")
}

// counting returns "m<from>,...,m<to>", newest first.
func counting(from, to int) string {
	var s []string
	for i := from; i >= to; i-- {
		s = append(s, fmt.Sprintf("m%d", i))
	}
	return strings.Join(s, ",")
}

// TestEndToEndMessages runs the scenarios of the message half of e2e.hurl,
// in the same order, against the real binaries on an empty database.
func TestEndToEndMessages(t *testing.T) {
	t.Parallel()
	s := startStack(t)

	// Health and metrics on the admin address.
	expect(t, call(t, "GET", s.admin+"/healthz", "", ""), 200)
	expect(t, call(t, "GET", s.admin+"/readyz", "", ""), 200)

	// An empty database: an empty first page without a next cursor.
	r := expect(t, s.get(t, "/messages"), 200)
	if len(messagesOf(t, r)) != 0 || r.body["next_cursor"] != nil {
		t.Fatalf("empty list = %s", r.raw)
	}

	// Create a message.
	r = expect(t, s.post(t, "/messages", `{"text":"Hello, world","user_id":"alice"}`), 201)
	id, _ := r.body["id"].(string)
	if u, err := uuid.Parse(id); err != nil || u.Version() != 7 {
		t.Errorf("id %q is not a UUIDv7", id)
	}
	if r.header.Get("Location") != "/messages/"+id {
		t.Errorf("Location = %q", r.header.Get("Location"))
	}
	if created, _ := r.body["created_at"].(string); !timeFormat.MatchString(created) {
		t.Errorf("created_at = %q, want RFC 3339 UTC with milliseconds", created)
	}
	if r.body["text"] != "Hello, world" || r.body["user_id"] != "alice" || r.body["reaction_count"] != 0.0 ||
		fmt.Sprint(r.body["reaction_counts"]) != "map[]" || fmt.Sprint(r.body["reaction_scores"]) != "map[]" ||
		fmt.Sprint(r.body["reactions"]) != "[]" {
		t.Errorf("created message = %s", r.raw)
	}
	created := r.raw

	// Read it back, alone and in the first page.
	r = expect(t, s.get(t, "/messages/"+id), 200)
	if r.raw != created {
		t.Errorf("GET /messages/{id} = %s, want %s", r.raw, created)
	}
	r = expect(t, s.get(t, "/messages"), 200)
	if textsOf(t, r) != "Hello, world" {
		t.Errorf("first page = %s", r.raw)
	}

	// Idempotent retry with a client id; the same id with other content.
	clientID := uuid.Must(uuid.NewV7()).String()
	body := `{"id":"` + clientID + `","text":"retry me","user_id":"bob"}`
	first := expect(t, s.post(t, "/messages", body), 201)
	again := expect(t, s.post(t, "/messages", body), 200)
	if again.raw != first.raw {
		t.Errorf("retry = %s, want %s", again.raw, first.raw)
	}
	expectError(t, s.post(t, "/messages", `{"id":"`+clientID+`","text":"other","user_id":"bob"}`), 409, "conflict")

	// Bad input: a clear 4xx, and nothing stored.
	expectError(t, s.post(t, "/messages", `{"user_id":"alice"}`), 400, "invalid_argument", "text")
	expectError(t, s.post(t, "/messages", `{"text":"   ","user_id":"alice"}`), 400, "invalid_argument", "text")
	expectError(t, s.post(t, "/messages", `{"text":"`+strings.Repeat("x", 5001)+`","user_id":"alice"}`), 400, "invalid_argument", "text")
	expectError(t, s.post(t, "/messages", `{"text":"nul\u0000byte","user_id":"alice"}`), 400, "invalid_argument", "text")
	expectError(t, s.post(t, "/messages", `{"text":"hi","user_id":"not valid!"}`), 400, "invalid_argument", "user_id")
	expectError(t, s.post(t, "/messages", `{"text":"hi","user_id":"alice","admin":true}`), 400, "invalid_argument", "admin")
	expectError(t, s.post(t, "/messages", `{"text":"hi","user_id":"alice"`), 400, "invalid_argument")
	expectError(t, s.post(t, "/messages", `{"text":"hi","user_id":"alice"}{"text":"again"}`), 400, "invalid_argument")
	expectError(t, s.post(t, "/messages", `{"id":"not-a-uuid","text":"hi","user_id":"alice"}`), 400, "invalid_argument", "id")
	expectError(t, call(t, "POST", s.base+"/messages", "text/plain", `{"text":"hi","user_id":"alice"}`), 415, "unsupported_media_type")
	expectError(t, s.post(t, "/messages", `{"text":"`+strings.Repeat("x", 70000)+`","user_id":"alice"}`), 413, "payload_too_large")
	r = expect(t, s.get(t, "/messages"), 200)
	if textsOf(t, r) != "retry me,Hello, world" {
		t.Errorf("after bad requests the list is %q", textsOf(t, r))
	}

	// Unknown message, malformed id, unknown route, wrong method.
	expectError(t, s.get(t, "/messages/"+uuid.Must(uuid.NewV7()).String()), 404, "not_found")
	expectError(t, s.get(t, "/messages/not-a-uuid"), 400, "invalid_argument", "id")
	expectError(t, s.get(t, "/nothing-here"), 404, "not_found")
	r = call(t, "PATCH", s.base+"/messages", "", "")
	expect(t, r, 405)
	if r.header.Get("Allow") != "GET, POST" {
		t.Errorf("Allow = %q", r.header.Get("Allow"))
	}

	// Pagination: 23 more messages make 25.
	for i := 1; i <= 23; i++ {
		expect(t, s.post(t, "/messages", fmt.Sprintf(`{"text":"m%d","user_id":"carol"}`, i)), 201)
	}
	p1 := expect(t, s.get(t, "/messages?page=1"), 200)
	if textsOf(t, p1) != counting(23, 14) || p1.body["next_cursor"] == nil {
		t.Errorf("page 1 = %q next %v", textsOf(t, p1), p1.body["next_cursor"])
	}
	p2 := expect(t, s.get(t, "/messages?page=2"), 200)
	if textsOf(t, p2) != counting(13, 4) {
		t.Errorf("page 2 = %q", textsOf(t, p2))
	}
	p3 := expect(t, s.get(t, "/messages?page=3"), 200)
	if textsOf(t, p3) != counting(3, 1)+",retry me,Hello, world" || p3.body["next_cursor"] != nil {
		t.Errorf("page 3 = %q next %v", textsOf(t, p3), p3.body["next_cursor"])
	}
	if p4 := expect(t, s.get(t, "/messages?page=4"), 200); len(messagesOf(t, p4)) != 0 {
		t.Errorf("page 4 = %s, want empty", p4.raw)
	}
	c2 := expect(t, s.get(t, "/messages?cursor="+p1.body["next_cursor"].(string)), 200)
	if textsOf(t, c2) != textsOf(t, p2) {
		t.Errorf("cursor after page 1 = %q, want page 2 %q", textsOf(t, c2), textsOf(t, p2))
	}
	if r := expect(t, s.get(t, "/messages?limit=3"), 200); textsOf(t, r) != counting(23, 21) {
		t.Errorf("limit=3 = %q", textsOf(t, r))
	}
	expectError(t, s.get(t, "/messages?limit=0"), 400, "invalid_argument", "limit")
	expectError(t, s.get(t, "/messages?limit=101"), 400, "invalid_argument", "limit")
	expectError(t, s.get(t, "/messages?page=0"), 400, "invalid_argument", "page")
	expectError(t, s.get(t, "/messages?page=1&cursor="+p1.body["next_cursor"].(string)), 400, "invalid_argument", "page")
	expectError(t, s.get(t, "/messages?cursor=garbage"), 400, "invalid_argument", "cursor")
	expectError(t, s.get(t, "/messages?color=red"), 400, "invalid_argument", "color")

	// Metrics count requests per route.
	r = call(t, "GET", s.admin+"/metrics", "", "")
	if !strings.Contains(r.raw, `messageapi_http_requests_total{code="201",method="POST",route="/messages"}`) {
		t.Errorf("metrics lack the request counter:\n%.2000s", r.raw)
	}

	// A graceful stop exits cleanly.
	for _, p := range []*proc{s.api, s.worker} {
		if err := p.stop(); err != nil {
			t.Errorf("%s did not stop cleanly: %v", p.name, err)
		}
	}
}
