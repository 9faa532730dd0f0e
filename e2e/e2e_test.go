package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"messageapi/client"
	"messageapi/httpapi/apitest"
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
	// tokens, when set, gives the bearer token of each request to the
	// API made through the stack's methods ("" for none).
	tokens func(method, path, body string) string
}

func startStack(t *testing.T, extraEnv ...string) *stack {
	t.Helper()
	s := launchStack(t, extraEnv...)
	s.api.waitReady()
	s.worker.waitReady()
	return s
}

// launchStack starts the binaries without waiting for them to be ready.
// extraEnv overrides the defaults (the last value of a key wins).
func launchStack(t *testing.T, extraEnv ...string) *stack {
	t.Helper()
	env := stackEnv(t, extraEnv...)
	return newStack(t, env, startProc(t, "api", env))
}

// stackEnv returns the environment of a stack on a fresh schema and key
// prefix, with extraEnv last (the last value of a key wins).
func stackEnv(t testing.TB, extraEnv ...string) []string {
	t.Helper()
	return append([]string{
		"DATABASE_URL=" + postgrestest.NewSchema(t),
		"REDIS_URL=" + redistest.URL(),
		"REDIS_PREFIX=" + redistest.NewPrefix(t),
		"ADDR=127.0.0.1:0",
		"ADMIN_ADDR=127.0.0.1:0",
		"LOG_LEVEL=debug",
	}, extraEnv...)
}

// newStack starts a worker beside api, a started API, on env.
func newStack(t *testing.T, env []string, api *proc) *stack {
	t.Helper()
	s := &stack{env: env, api: api}
	s.worker = startProc(t, "worker", env)
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
	// took is how long the answer took, from sending the request to
	// reading the last byte; checking it is not counted.
	took time.Duration
}

// call makes a request to the API and fails the test when there is no
// JSON answer or the exchange departs from openapi.yaml. It must run on
// the test's goroutine; other goroutines use try.
func call(t *testing.T, method, url, contentType, body string) reply {
	t.Helper()
	r, err := try(method, url, contentType, body)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// callAdmin gets a path of an admin address, which is not part of the
// API's contract and so is not checked against openapi.yaml.
func callAdmin(t testing.TB, url string) reply {
	t.Helper()
	r, err := exchange(http.MethodGet, url, http.Header{}, "", false)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// try makes a request to the API and returns its reply, or an error when
// there is no answer, the answer claims JSON and is not, or the request
// and its answer depart from openapi.yaml (see apitest.Checker).
func try(method, url, contentType, body string) (reply, error) {
	header := http.Header{}
	if contentType != "" {
		header.Set("Content-Type", contentType)
	}
	return exchange(method, url, header, body, true)
}

// send is try with any request headers.
func send(method, url string, header http.Header, body string) (reply, error) {
	return exchange(method, url, header, body, true)
}

// contract is the checker of openapi.yaml, loaded once per test binary.
var contract = sync.OnceValues(apitest.NewChecker)

func exchange(method, url string, header http.Header, body string, check bool) (reply, error) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return reply{}, err
	}
	req.Header = header
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return reply{}, fmt.Errorf("%s %s: %w", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{}, fmt.Errorf("%s %s: read the answer: %w", method, url, err)
	}
	r := reply{status: resp.StatusCode, header: resp.Header, raw: string(b), took: time.Since(start)}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") && method != http.MethodHead {
		if err := json.Unmarshal(b, &r.body); err != nil {
			return r, fmt.Errorf("%s %s: body is not a JSON object: %s", method, url, b)
		}
	}
	if check {
		c, err := contract()
		if err != nil {
			return r, err
		}
		if err := c.Check(req, []byte(body), resp, b); err != nil {
			return r, fmt.Errorf("%w; body %.500s", err, b)
		}
	}
	return r, nil
}

// call makes a request to the API with the token s.tokens gives it.
func (s *stack) call(t *testing.T, method, path, contentType, body string) reply {
	t.Helper()
	header := http.Header{}
	if contentType != "" {
		header.Set("Content-Type", contentType)
	}
	return s.send(t, method, path, header, body)
}

// send is call with any request headers.
func (s *stack) send(t *testing.T, method, path string, header http.Header, body string) reply {
	t.Helper()
	if s.tokens != nil {
		if token := s.tokens(method, path, body); token != "" {
			header.Set("Authorization", "Bearer "+token)
		}
	}
	r, err := send(method, s.base+path, header, body)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (s *stack) get(t *testing.T, path string) reply {
	t.Helper()
	return s.call(t, http.MethodGet, path, "", "")
}

func (s *stack) post(t *testing.T, path, body string) reply {
	t.Helper()
	return s.call(t, http.MethodPost, path, "application/json", body)
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

// runOnce runs a subcommand of a built binary to completion and returns
// its standard output; it fails the test when the command fails.
func runOnce(t *testing.T, name string, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(buildBinaries(t), name), args...)
	cmd.Env = append(os.Environ(), env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	dieWithTest(cmd)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s%s", name, args, err, out, stderr.String())
	}
	return string(out)
}

func (s *stack) del(t *testing.T, path string) reply {
	t.Helper()
	return s.call(t, http.MethodDelete, path, "", "")
}

// field returns the value at a dotted path of a JSON body, where a number
// segment indexes an array; nil when absent.
func field(body map[string]any, path string) any {
	var cur any = body
	for _, seg := range strings.Split(path, ".") {
		switch c := cur.(type) {
		case map[string]any:
			cur = c[seg]
		case []any:
			var i int
			if _, err := fmt.Sscan(seg, &i); err != nil || i >= len(c) {
				return nil
			}
			cur = c[i]
		default:
			return nil
		}
	}
	return cur
}

// mismatch checks fields of a JSON body, path -> expected value (numbers
// as JSON decodes them), or the length of an array with "#path". It
// returns what differs, or "" when everything matches.
func mismatch(body map[string]any, checks map[string]any) string {
	var diffs []string
	for path, exp := range checks {
		if strings.HasPrefix(path, "#") {
			if list, _ := field(body, path[1:]).([]any); len(list) != exp.(int) {
				diffs = append(diffs, fmt.Sprintf("%s has %d items, want %d", path[1:], len(list), exp))
			}
		} else if got := field(body, path); fmt.Sprint(got) != fmt.Sprint(exp) {
			diffs = append(diffs, fmt.Sprintf("%s = %v, want %v", path, got, exp))
		}
	}
	return strings.Join(diffs, "; ")
}

func want(t *testing.T, r reply, checks map[string]any) {
	t.Helper()
	if d := mismatch(r.body, checks); d != "" {
		t.Errorf("%s; body %s", d, r.raw)
	}
}

// waitFor polls GET path until the checks hold, as e2e.hurl's retries do.
func (s *stack) waitFor(t *testing.T, path string, checks map[string]any) {
	t.Helper()
	eventually(t, 10*time.Second, func() (bool, string) {
		r := s.get(t, path)
		if r.status != 200 {
			return false, r.raw
		}
		d := mismatch(r.body, checks)
		return d == "", d + "; body " + r.raw
	})
}

var timeFormat = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$`)

// TestEndToEnd runs the scenarios of e2e.hurl, in the same order, against
// the real binaries on an empty database.
func TestEndToEnd(t *testing.T) {
	t.Parallel()
	endToEnd(t, startStack(t))
}

// TestEndToEndWithAuth runs the same scenarios with authentication on:
// every request carries the token of the user it names, or a server
// token where it names none (or one that is not a user id), so each
// scenario gets the answer it gets in the open API.
func TestEndToEndWithAuth(t *testing.T) {
	t.Parallel()
	s := startStack(t, "AUTH_SECRET="+testSecret)
	s.tokens = tokenOfNamedUser(t)
	endToEnd(t, s)
}

// endToEnd is the scenario of e2e.hurl on a fresh stack.
func endToEnd(t *testing.T, s *stack) {
	const unknown = "0192f0a4-8a4b-7cc1-9e8a-5a3b1c2d3e4f"

	// Health, on the admin address.
	expect(t, callAdmin(t, s.admin+"/healthz"), 200)
	want(t, expect(t, callAdmin(t, s.admin+"/readyz"), 200), map[string]any{"status": "ok"})

	// An empty database: an empty first page, without a next cursor.
	want(t, expect(t, s.get(t, "/messages"), 200), map[string]any{"#messages": 0, "next_cursor": nil})

	// Create a message, through the client generated from openapi.yaml
	// (the main flows use it; malformed input, which it cannot send, goes
	// raw).
	c, ctx := s.client(t), t.Context()
	created := answered(c.CreateMessageWithResponse(ctx, nil, client.CreateMessageRequest{Text: "Hello, world", UserId: client.Ptr("alice")})).want(t, 201)
	m := created.JSON201
	id := m.Id.String()
	if m.Id.Version() != 7 {
		t.Errorf("id %q is not a UUIDv7", id)
	}
	if loc := created.HTTPResponse.Header.Get("Location"); loc != "/messages/"+id {
		t.Errorf("Location = %q", loc)
	}
	if !timeFormat.MatchString(fieldOf(created.Body, "created_at")) {
		t.Errorf("created_at = %q, want RFC 3339 UTC with milliseconds", fieldOf(created.Body, "created_at"))
	}
	if m.Text != "Hello, world" || m.UserId != "alice" || m.ReactionCount != 0 || m.ReactionCounts == nil || len(m.ReactionCounts) != 0 ||
		m.ReactionScores == nil || len(m.ReactionScores) != 0 || m.Reactions == nil || len(m.Reactions) != 0 {
		t.Errorf("created %s", created.Body)
	}

	// Read it back, alone and in the first page.
	one := answered(c.GetMessageWithResponse(ctx, id, nil)).want(t, 200).JSON200
	if one.Id != m.Id || one.Text != "Hello, world" || one.ReactionCount != 0 {
		t.Errorf("read back %+v", one)
	}
	first := answered(c.ListMessagesWithResponse(ctx, nil)).want(t, 200).JSON200
	if len(first.Messages) != 1 || first.Messages[0].Id != m.Id {
		t.Errorf("page 1 is %+v", first)
	}

	// A retry with the same id and content; the same id with other content.
	retry := answered(c.CreateMessageWithResponse(ctx, nil, client.CreateMessageRequest{Id: &id, Text: "Hello, world", UserId: client.Ptr("alice")})).want(t, 200)
	if retry.JSON200.Id != m.Id {
		t.Errorf("the retry answered %s", retry.Body)
	}
	if loc := retry.HTTPResponse.Header.Get("Location"); loc != "" {
		t.Errorf("a retry answered with Location %q", loc)
	}
	expectError(t, s.post(t, "/messages", `{"id": "`+id+`", "text": "Something else", "user_id": "alice"}`), 409, "conflict")

	// Bad messages: a clear 4xx each, and nothing stored.
	expectError(t, s.post(t, "/messages", `{"user_id": "alice"}`), 400, "invalid_argument", "text")
	expectError(t, s.post(t, "/messages", `{"text": "   ", "user_id": "alice"}`), 400, "invalid_argument", "text")
	expectError(t, s.post(t, "/messages", `{"text": "`+strings.Repeat("x", 5001)+`", "user_id": "alice"}`), 400, "invalid_argument", "text")
	expectError(t, s.post(t, "/messages", `{"text": "nul\u0000byte", "user_id": "alice"}`+"\n"), 400, "invalid_argument", "text")
	expectError(t, s.post(t, "/messages", `{"text": "hi", "user_id": "not valid!"}`), 400, "invalid_argument", "user_id")
	expectError(t, s.post(t, "/messages", `{"text": "hi", "user_id": "alice", "admin": true}`), 400, "invalid_argument", "admin")
	expectError(t, s.post(t, "/messages", `{"text": "hi", "user_id": "alice"`+"\n"), 400, "invalid_argument")
	expectError(t, s.post(t, "/messages", `{"text": "hi", "user_id": "alice"}{"text": "again"}`+"\n"), 400, "invalid_argument")
	expectError(t, s.post(t, "/messages", `{"id": "not-a-uuid", "text": "hi", "user_id": "alice"}`), 400, "invalid_argument", "id")
	expectError(t, s.call(t, "POST", "/messages", "text/plain", `{"text": "hi", "user_id": "alice"}`+"\n"), 415, "unsupported_media_type")
	large, err := os.ReadFile("testdata/too-large.json") // e2e.hurl sends it too, as e2e/testdata/too-large.json
	if err != nil {
		t.Fatal(err)
	}
	expectError(t, s.post(t, "/messages", string(large)), 413, "payload_too_large")
	want(t, expect(t, s.get(t, "/messages"), 200), map[string]any{"#messages": 1})

	// Unknown message, malformed id, unknown route, wrong method.
	if e, ok := client.ErrorOf(answered(c.GetMessageWithResponse(ctx, unknown, nil)).want(t, 404).Body); !ok || e.Code != "not_found" {
		t.Errorf("unknown message: %+v", e)
	}
	expectError(t, s.get(t, "/messages/not-a-uuid"), 400, "invalid_argument", "id")
	expectError(t, s.get(t, "/nothing-here"), 404, "not_found")
	r := expect(t, s.call(t, "PATCH", "/messages", "", ""), 405)
	if r.header.Get("Allow") != "GET, HEAD, POST, OPTIONS" {
		t.Errorf("Allow = %q", r.header.Get("Allow"))
	}

	// Reactions: one per (message, user, type); the score defaults to 1.
	reactions := "/messages/" + id + "/reactions"
	react := func(status int, user, typ string, score *int) client.Reaction {
		t.Helper()
		r := answered(c.AddReactionWithResponse(ctx, id, nil, client.AddReactionRequest{Type: typ, UserId: &user, Score: score})).want(t, status)
		if status == 201 {
			return *r.JSON201
		}
		return *r.JSON200
	}
	bobLike := react(201, "bob", "like", nil)
	if bobLike.MessageId != m.Id || bobLike.UserId != "bob" || bobLike.Type != "like" || bobLike.Score != 1 || bobLike.UpdatedAt.IsZero() {
		t.Errorf("bob's like is %+v", bobLike)
	}
	if again := react(200, "bob", "like", client.Ptr(5)); again.Id != bobLike.Id || again.Score != 5 {
		t.Errorf("bob's like, scored again, is %+v", again)
	}
	react(201, "carol", "love", client.Ptr(2))
	react(201, "dave", "like", client.Ptr(3))

	// The projection catches up: counts, scores, latest first.
	s.waitFor(t, "/messages/"+id, map[string]any{
		"reaction_count": 3, "reaction_counts.like": 2, "reaction_counts.love": 1,
		"reaction_scores.like": 8, "reaction_scores.love": 2, "#reactions": 3,
		"reactions.0.user_id": "dave", "reactions.2.user_id": "bob", "reactions.2.score": 5,
		"reaction_groups.like.count": 2, "reaction_groups.like.sum_scores": 8, "reaction_groups.love.count": 1,
	})
	if r := s.get(t, "/messages/"+id); field(r.body, "reaction_groups.like.first_reaction_at") != field(r.body, "reactions.2.created_at") ||
		field(r.body, "reaction_groups.like.last_reaction_at") != field(r.body, "reactions.0.created_at") {
		t.Errorf("the like group runs from bob's to dave's reaction: %s", r.raw)
	}
	s.waitFor(t, "/messages", map[string]any{
		"messages.0.reaction_count": 3, "messages.0.reaction_scores.like": 8, "#messages.0.reactions": 3,
	})

	// The full list, newest first, with filters and a cursor.
	list := func(params client.ListReactionsParams) client.ReactionPage {
		t.Helper()
		return *answered(c.ListReactionsWithResponse(ctx, id, &params)).want(t, 200).JSON200
	}
	if all := list(client.ListReactionsParams{}); users(all.Reactions) != "dave carol bob" || all.NextCursor != nil {
		t.Errorf("all reactions: %+v", all)
	}
	if likes := list(client.ListReactionsParams{Type: client.Ptr("like")}); users(likes.Reactions) != "dave bob" {
		t.Errorf("likes: %+v", likes)
	}
	if carol := list(client.ListReactionsParams{UserId: client.Ptr("carol")}); len(carol.Reactions) != 1 || carol.Reactions[0].Type != "love" {
		t.Errorf("carol's: %+v", carol)
	}
	two := list(client.ListReactionsParams{Limit: client.Ptr(2)})
	if len(two.Reactions) != 2 || two.NextCursor == nil {
		t.Fatalf("2 reactions: %+v", two)
	}
	if rest := list(client.ListReactionsParams{Limit: client.Ptr(2), Cursor: two.NextCursor}); users(rest.Reactions) != "bob" || rest.NextCursor != nil {
		t.Errorf("after the cursor: %+v", rest)
	}

	// Bad reactions: a clear 4xx each.
	for _, score := range []string{"0", "-1", "1.5", `"5"`, "1000001"} {
		expectError(t, s.post(t, reactions, `{"type": "like", "user_id": "erin", "score": `+score+`}`), 400, "invalid_argument", "score")
	}
	expectError(t, s.post(t, reactions, `{"type": "Like!", "user_id": "erin"}`), 400, "invalid_argument", "type")
	expectError(t, s.post(t, reactions, `{"type": "like"}`), 400, "invalid_argument", "user_id")
	expectError(t, s.post(t, reactions, `{"type": "like", "user_id": "erin", "message_id": "`+id+`"}`), 400, "invalid_argument", "message_id")
	expectError(t, s.post(t, "/messages/"+unknown+"/reactions", `{"type": "like", "user_id": "erin"}`), 404, "not_found")
	expectError(t, s.post(t, "/messages/not-a-uuid/reactions", `{"type": "like", "user_id": "erin"}`), 400, "invalid_argument", "id")
	expectError(t, s.get(t, reactions+"?limit=0"), 400, "invalid_argument", "limit")
	expectError(t, s.get(t, reactions+"?cursor=garbage"), 400, "invalid_argument", "cursor")
	expectError(t, s.get(t, reactions+"?type=NOPE"), 400, "invalid_argument", "type")
	expect(t, s.get(t, "/messages/"+unknown+"/reactions"), 404)

	// Delete a reaction; a second delete finds nothing.
	answered(c.RemoveReactionWithResponse(ctx, id, "love", &client.RemoveReactionParams{UserId: client.Ptr("carol")})).want(t, 204)
	if e, ok := client.ErrorOf(answered(c.RemoveReactionWithResponse(ctx, id, "love", &client.RemoveReactionParams{UserId: client.Ptr("carol")})).want(t, 404).Body); !ok || e.Code != "not_found" {
		t.Errorf("a second delete: %+v", e)
	}
	expectError(t, s.del(t, reactions+"/love"), 400, "invalid_argument", "user_id")
	s.waitFor(t, "/messages/"+id, map[string]any{
		"reaction_count": 2, "reaction_counts.like": 2, "reaction_counts.love": nil, "reaction_scores.like": 8, "#reactions": 2,
		"reaction_groups.love": nil, "reaction_groups.like.count": 2,
	})

	// Pagination in pages of 10: 20 more messages make 21.
	fillers := map[int]client.MessageID{}
	for i := 1; i <= 20; i++ {
		fillers[i] = answered(c.CreateMessageWithResponse(ctx, nil, client.CreateMessageRequest{Text: fmt.Sprintf("filler %d", i), UserId: client.Ptr("carol")})).want(t, 201).JSON201.Id
	}
	pageOf := func(params client.ListMessagesParams) client.MessagePage {
		t.Helper()
		return *answered(c.ListMessagesWithResponse(ctx, &params)).want(t, 200).JSON200
	}
	page1 := pageOf(client.ListMessagesParams{Page: client.Ptr(1)})
	if texts(page1.Messages) != "filler 20 … filler 11" || page1.NextCursor == nil {
		t.Fatalf("page 1: %s", texts(page1.Messages))
	}
	if page2 := pageOf(client.ListMessagesParams{Page: client.Ptr(2)}); texts(page2.Messages) != "filler 10 … filler 1" || page2.NextCursor == nil {
		t.Errorf("page 2: %s, next %v", texts(page2.Messages), page2.NextCursor)
	}
	if page3 := pageOf(client.ListMessagesParams{Page: client.Ptr(3)}); len(page3.Messages) != 1 || page3.Messages[0].Id != m.Id ||
		page3.Messages[0].ReactionCount != 2 || page3.NextCursor != nil {
		t.Errorf("page 3: %+v", page3)
	}
	if page4 := pageOf(client.ListMessagesParams{Page: client.Ptr(4)}); len(page4.Messages) != 0 {
		t.Errorf("page 4: %+v", page4)
	}
	if next := pageOf(client.ListMessagesParams{Cursor: page1.NextCursor}); texts(next.Messages) != "filler 10 … filler 1" {
		t.Errorf("after page 1's cursor: %s", texts(next.Messages))
	}
	if three := pageOf(client.ListMessagesParams{Limit: client.Ptr(3)}); len(three.Messages) != 3 {
		t.Errorf("limit 3: %d messages", len(three.Messages))
	}
	expectError(t, s.get(t, "/messages?limit=0"), 400, "invalid_argument", "limit")
	expectError(t, s.get(t, "/messages?limit=101"), 400, "invalid_argument", "limit")
	expectError(t, s.get(t, "/messages?page=0"), 400, "invalid_argument", "page")
	expectError(t, s.get(t, "/messages?page=1&cursor="+*page1.NextCursor), 400, "invalid_argument", "page")
	expectError(t, s.get(t, "/messages?cursor=garbage"), 400, "invalid_argument", "cursor")
	expectError(t, s.get(t, "/messages?color=red"), 400, "invalid_argument", "color")

	// Jump to a message and page both ways from it.
	around := pageOf(client.ListMessagesParams{Around: client.Ptr(fillers[10]), Limit: client.Ptr(5)})
	if texts(around.Messages) != "filler 12 … filler 8" || around.Messages[2].Text != "filler 10" || around.PrevCursor == nil || around.NextCursor == nil {
		t.Fatalf("around filler 10: %+v", around)
	}
	if newer := pageOf(client.ListMessagesParams{Cursor: around.PrevCursor, Limit: client.Ptr(5)}); texts(newer.Messages) != "filler 17 … filler 13" {
		t.Errorf("newer: %s", texts(newer.Messages))
	}
	if older := pageOf(client.ListMessagesParams{Cursor: around.NextCursor, Limit: client.Ptr(5)}); texts(older.Messages) != "filler 7 … filler 3" {
		t.Errorf("older: %s", texts(older.Messages))
	}
	if newest := pageOf(client.ListMessagesParams{Around: client.Ptr(fillers[20])}); len(newest.Messages) != 10 || newest.PrevCursor != nil {
		t.Errorf("around the newest: %+v", newest)
	}
	expectError(t, s.get(t, "/messages?around="+unknown), 404, "not_found")
	expectError(t, s.get(t, "/messages?around="+fillers[1].String()+"&page=2"), 400, "invalid_argument", "around")

	// A reader's own reactions, on a page and on one message.
	bobs := pageOf(client.ListMessagesParams{Page: client.Ptr(3), UserId: client.Ptr("bob")})
	if own := bobs.Messages[0].OwnReactions; bobs.Messages[0].Id != m.Id || own == nil || len(*own) != 1 || (*own)[0].Type != "like" || (*own)[0].Score != 5 {
		t.Errorf("bob's page 3: %+v", bobs.Messages[0])
	}
	if own := pageOf(client.ListMessagesParams{UserId: client.Ptr("bob")}).Messages[0].OwnReactions; own == nil || len(*own) != 0 {
		t.Errorf("bob's page 1 has own reactions %v on a message he did not react to", own)
	}
	daves := answered(c.GetMessageWithResponse(ctx, id, &client.GetMessageParams{UserId: client.Ptr("dave")})).want(t, 200).JSON200
	if daves.OwnReactions == nil || len(*daves.OwnReactions) != 1 || (*daves.OwnReactions)[0].UserId != "dave" {
		t.Errorf("dave's reactions: %+v", daves.OwnReactions)
	}
	if anon := answered(c.GetMessageWithResponse(ctx, id, nil)).want(t, 200); anon.JSON200.OwnReactions != nil {
		t.Errorf("own_reactions without a user: %s", anon.Body)
	}
	expectError(t, s.get(t, "/messages?user_id=not%20valid"), 400, "invalid_argument", "user_id")

	// One reaction per user: enforce_unique removes the user's other types.
	unique := answered(c.CreateMessageWithResponse(ctx, nil, client.CreateMessageRequest{Text: "one reaction each", UserId: client.Ptr("alice")})).want(t, 201).JSON201.Id.String()
	for _, r := range []client.AddReactionRequest{
		{Type: "like", UserId: client.Ptr("erin")},
		{Type: "love", UserId: client.Ptr("erin")},
		{Type: "wow", UserId: client.Ptr("erin"), EnforceUnique: client.Ptr(true)},
	} {
		answered(c.AddReactionWithResponse(ctx, unique, nil, r)).want(t, 201)
	}
	if erins := answered(c.ListReactionsWithResponse(ctx, unique, &client.ListReactionsParams{UserId: client.Ptr("erin")})).want(t, 200).JSON200; len(erins.Reactions) != 1 || erins.Reactions[0].Type != "wow" {
		t.Errorf("erin's reactions after enforce_unique: %+v", erins.Reactions)
	}
	s.waitFor(t, "/messages/"+unique, map[string]any{
		"reaction_count": 1, "reaction_groups.wow.count": 1, "reaction_groups.like": nil, "reaction_groups.love": nil,
	})

	// Edit and delete a message: only its author may; a tombstone keeps
	// its place in the pages, without text or reactions.
	edited := answered(c.CreateMessageWithResponse(ctx, nil, client.CreateMessageRequest{Text: "to be edited", UserId: client.Ptr("alice")})).want(t, 201).JSON201
	editedID := edited.Id.String()
	answered(c.AddReactionWithResponse(ctx, editedID, nil, client.AddReactionRequest{Type: "like", UserId: client.Ptr("bob")})).want(t, 201)
	expectError(t, s.call(t, http.MethodPatch, "/messages/"+editedID, "application/json", `{"text": "edited", "user_id": "bob"}`), 403, "permission_denied")
	after := answered(c.EditMessageWithResponse(ctx, editedID, nil, client.EditMessageRequest{Text: "edited", UserId: client.Ptr("alice")})).want(t, 200).JSON200
	if after.Text != "edited" || after.UpdatedAt == nil || after.CreatedAt != edited.CreatedAt {
		t.Errorf("the edited message: %+v", after)
	}
	want(t, expect(t, s.get(t, "/messages"), 200), map[string]any{"messages.0.id": editedID, "messages.0.text": "edited"})
	expectError(t, s.call(t, http.MethodPatch, "/messages/"+editedID, "application/json", `{"text": " ", "user_id": "alice"}`), 400, "invalid_argument", "text")
	expectError(t, s.del(t, "/messages/"+editedID+"?user_id=bob"), 403, "permission_denied")
	for range 2 { // deleting a tombstone again changes nothing
		answered(c.DeleteMessageWithResponse(ctx, editedID, &client.DeleteMessageParams{UserId: client.Ptr("alice")})).want(t, 204)
	}
	tomb := expect(t, s.get(t, "/messages"), 200)
	want(t, tomb, map[string]any{"messages.0.id": editedID, "messages.0.text": "", "messages.0.reaction_count": 0, "#messages.0.reactions": 0})
	if field(tomb.body, "messages.0.deleted_at") == nil {
		t.Errorf("the tombstone has no deleted_at: %s", tomb.raw)
	}
	want(t, expect(t, s.get(t, "/messages/"+editedID+"/reactions"), 200), map[string]any{"#reactions": 0})
	expectError(t, s.post(t, "/messages/"+editedID+"/reactions", `{"type": "like", "user_id": "bob"}`), 404, "not_found")
	expectError(t, s.call(t, http.MethodPatch, "/messages/"+editedID, "application/json", `{"text": "back", "user_id": "alice"}`), 404, "not_found")

	// Channels: a message in one is listed there only; GET /messages is
	// the channel default.
	general := answered(c.CreateChannelMessageWithResponse(ctx, "general", nil, client.CreateMessageRequest{Text: "hi, general", UserId: client.Ptr("alice")})).want(t, 201).JSON201
	if general.ChannelId != "general" {
		t.Errorf("a message posted to general: %+v", general)
	}
	inGeneral := answered(c.ListChannelMessagesWithResponse(ctx, "general", nil)).want(t, 200).JSON200
	if len(inGeneral.Messages) != 1 || inGeneral.Messages[0].Id != general.Id || inGeneral.Messages[0].ChannelId != "general" {
		t.Errorf("GET /channels/general/messages: %+v", inGeneral.Messages)
	}
	want(t, expect(t, s.get(t, "/messages"), 200), map[string]any{"messages.0.id": editedID, "messages.0.channel_id": "default"})
	want(t, expect(t, s.get(t, "/channels/nobody-here/messages"), 200), map[string]any{"#messages": 0})
	expectError(t, s.get(t, "/channels/no%20spaces/messages"), 400, "invalid_argument", "channel_id")
	expectError(t, s.post(t, "/channels/other/messages", `{"id": "`+general.Id.String()+`", "text": "hi, general", "user_id": "alice"}`), 409, "conflict")

	// Live events: a stream that resumes from the start of the feed
	// replays this message's events, then says it is live.
	eventually(t, 10*time.Second, func() (bool, string) {
		r := s.send(t, http.MethodGet, "/events?message_id="+unique+"&duration=1s", http.Header{"Last-Event-Id": {"0-0"}}, "")
		ok := r.status == 200 && r.header.Get("Content-Type") == "text/event-stream" && strings.Contains(r.raw, "event: reaction.new") &&
			strings.Contains(r.raw, `"type":"wow"`) && strings.Contains(r.raw, "event: ready")
		return ok, fmt.Sprintf("%d %s", r.status, r.raw)
	})
	eventually(t, 10*time.Second, func() (bool, string) {
		r := s.send(t, http.MethodGet, "/events?message_id="+editedID+"&duration=1s", http.Header{"Last-Event-Id": {"0-0"}}, "")
		ok := r.status == 200 && strings.Contains(r.raw, "event: message.updated") && strings.Contains(r.raw, "event: message.deleted")
		return ok, fmt.Sprintf("%d %s", r.status, r.raw)
	})
	expectError(t, s.get(t, "/events?message_id=nope"), 400, "invalid_argument", "message_id")
	// A stream of one channel has that channel's events only.
	eventually(t, 10*time.Second, func() (bool, string) {
		r := s.send(t, http.MethodGet, "/events?channel_id=general&duration=1s", http.Header{"Last-Event-Id": {"0-0"}}, "")
		ok := r.status == 200 && strings.Contains(r.raw, "event: message.new") && strings.Contains(r.raw, general.Id.String()) &&
			strings.Contains(r.raw, `"channel_id":"general"`) && !strings.Contains(r.raw, `"channel_id":"default"`)
		return ok, fmt.Sprintf("%d %s", r.status, r.raw)
	})
	expectError(t, s.get(t, "/events?channel_id=no%20spaces"), 400, "invalid_argument", "channel_id")

	// Metrics count requests per route.
	r = callAdmin(t, s.admin+"/metrics")
	if !strings.Contains(r.raw, `messageapi_http_requests_total{code="201",method="POST",route="/messages"}`) {
		t.Errorf("metrics lack the request counter:\n%.2000s", r.raw)
	}
	// Both programs say which build they are, with the version stamped
	// at build time.
	buildInfo := regexp.MustCompile(fmt.Sprintf(`(?m)^messageapi_build_info\{goversion=%q,revision="[^"]+",version=%q\} 1$`,
		runtime.Version(), e2eVersion))
	for name, admin := range map[string]string{"api": s.admin, "worker": "http://" + s.worker.addr("admin")} {
		if raw := callAdmin(t, admin+"/metrics").raw; !buildInfo.MatchString(raw) {
			t.Errorf("the %s's metrics lack %s:\n%.3000s", name, buildInfo, raw)
		}
	}

	// The API's contract, openapi.yaml, as JSON.
	r = expect(t, s.get(t, "/openapi.json"), 200)
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	if v, _ := r.body["openapi"].(string); !strings.HasPrefix(v, "3.1") {
		t.Errorf("openapi = %v, want 3.1", r.body["openapi"])
	}
	want(t, r, map[string]any{"info.title": "Message API"})

	// Beyond e2e.hurl: both programs say whether PostgreSQL runs
	// autovacuum, as the server says.
	conn, err := pgx.Connect(context.Background(), databaseURLOf(s.env))
	if err != nil {
		t.Fatal(err)
	}
	var autovacuum bool
	err = conn.QueryRow(context.Background(), `select current_setting('autovacuum')::bool`).Scan(&autovacuum)
	conn.Close(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	gauge := "messageapi_postgres_autovacuum_enabled 0"
	if autovacuum {
		gauge = "messageapi_postgres_autovacuum_enabled 1"
	}
	for _, admin := range []string{s.admin, "http://" + s.worker.addr("admin")} {
		if r := callAdmin(t, admin+"/metrics"); !strings.Contains(r.raw, "\n"+gauge+"\n") {
			t.Errorf("%s/metrics lacks %q", admin, gauge)
		}
	}

	// Every metric the operator pack of deploy/ names is exported.
	checkOperatorPack(t, s)

	// ...reconcile finds every view right...
	out := runOnce(t, "worker", s.env, "reconcile")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var report struct {
		Checked, Rebuilt int
		Drifted          []string
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &report); err != nil || report.Checked != 24 || report.Rebuilt != 0 || len(report.Drifted) != 0 {
		t.Errorf("worker reconcile = %s (%v); want 24 checked, nothing rebuilt or drifted", lines[len(lines)-1], err)
	}
	// ...migrate is a no-op on a migrated schema...
	runOnce(t, "api", s.env, "migrate")

	// ...and both programs stop cleanly on SIGTERM.
	for _, p := range []*proc{s.api, s.worker} {
		if err := p.stop(); err != nil {
			t.Errorf("%s did not stop cleanly: %v", p.name, err)
		}
	}
}

// users lists the users of reactions, in order.
func users(rs []client.Reaction) string {
	var names []string
	for _, r := range rs {
		names = append(names, r.UserId)
	}
	return strings.Join(names, " ")
}

// texts gives the first and last text of a page ("" when empty).
func texts(ms []client.Message) string {
	if len(ms) == 0 {
		return ""
	}
	return ms[0].Text + " … " + ms[len(ms)-1].Text
}

// fieldOf is a string field of a JSON object ("" when absent).
func fieldOf(body []byte, name string) string {
	var m map[string]any
	_ = json.Unmarshal(body, &m)
	v, _ := m[name].(string)
	return v
}
