package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"messageapi"
	"messageapi/auth"
	"messageapi/command"
	"messageapi/httpapi"
	"messageapi/httpapi/apitest"
	"messageapi/query"
	"messageapi/sse"
)

// These tests run the transport over the real use cases on storage held
// in memory (fakes_test.go), so they need neither PostgreSQL nor Redis
// and run in the fast tier. The contract checker holds every exchange to
// openapi.yaml. The wired program, on the real servers, is tested in
// cmd/api and e2e.

type fastAPI struct {
	*httptest.Server
	handler http.Handler // the server's handler, to call without a connection
	t       *testing.T
	store   *memory
	feed    *memoryFeed
	hub     *sse.Hub
}

// newFastAPI serves the API on memory; edit changes the router's
// configuration.
func newFastAPI(t *testing.T, edit ...func(*httpapi.Config)) *fastAPI {
	t.Helper()
	store, feed := newMemory(), newMemoryFeed()
	log := slog.New(slog.DiscardHandler)
	hub := sse.NewHub(feed, log, prometheus.NewRegistry(), sse.Config{MaxClients: 4, Buffer: 16, Heartbeat: time.Minute, Block: 20 * time.Millisecond})
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { hub.Run(ctx); close(done) }()
	srv, err := httpapi.New(httpapi.UseCases{
		CreateMessage:  command.NewCreateMessageHandler(store, store, log).AnnounceTo(feed),
		ChangeMessage:  command.NewChangeMessageHandler(store, store, log).AnnounceTo(feed),
		AddReaction:    command.NewAddReactionHandler(store, store, log, command.AddReactionConfig{}),
		RemoveReaction: command.NewRemoveReactionHandler(store, store, log),
		ListMessages:   query.NewListMessagesHandler(store, store, store, query.ListMessagesConfig{}),
		GetMessage:     query.NewGetMessageHandler(store, store),
		ListReactions:  query.NewListReactionsHandler(store),
		Events:         hub,
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg := httpapi.Config{Log: log, Metrics: httpapi.NewMetrics(prometheus.NewRegistry()), Ready: func() bool { return true }, RequestTimeout: 5 * time.Second}
	for _, e := range edit {
		e(&cfg)
	}
	handler := srv.Handler(cfg)
	api := &fastAPI{Server: httptest.NewServer(handler), handler: handler, t: t, store: store, feed: feed, hub: hub}
	t.Cleanup(func() {
		hub.Close()
		api.Close()
		stop()
		<-done
	})
	return api
}

type answer struct {
	status int
	header http.Header
	body   map[string]any
}

// do makes a request with a JSON body (none when body is "") and checks
// the exchange against the contract.
func (a *fastAPI) do(method, path, body string, header ...string) answer {
	a.t.Helper()
	req, err := http.NewRequest(method, a.URL+path, strings.NewReader(body))
	if err != nil {
		a.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, b := apitest.Exchange(a.t, a.Client(), req, []byte(body))
	var m map[string]any
	if len(b) > 0 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(b, &m); err != nil {
			a.t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
	return answer{resp.StatusCode, resp.Header, m}
}

func (a *fastAPI) want(got answer, status int, code string) answer {
	a.t.Helper()
	if got.status != status || (code != "" && got.body["code"] != code) {
		a.t.Fatalf("got %d %v, want %d %s", got.status, got.body, status, code)
	}
	return got
}

func TestFastMessagesAndReactions(t *testing.T) {
	t.Parallel()
	api := newFastAPI(t)
	created := api.want(api.do("POST", "/messages", `{"text":"hello","user_id":"alice"}`), 201, "")
	id, _ := created.body["id"].(string)
	if created.header.Get("Location") != "/messages/"+id || created.body["text"] != "hello" || created.body["reaction_count"] != 0.0 {
		t.Errorf("POST /messages = %v, Location %q", created.body, created.header.Get("Location"))
	}
	retry := `{"id":"` + id + `","text":"hello","user_id":"alice"}`
	api.want(api.do("POST", "/messages", retry), 200, "")
	api.want(api.do("POST", "/messages", `{"id":"`+id+`","text":"other","user_id":"alice"}`), 409, "conflict")

	api.want(api.do("POST", "/messages/"+id+"/reactions", `{"type":"like","user_id":"bob"}`), 201, "")
	again := api.want(api.do("POST", "/messages/"+id+"/reactions", `{"type":"like","user_id":"bob","score":5}`), 200, "")
	if again.body["score"] != 5.0 {
		t.Errorf("a re-scored reaction = %v", again.body)
	}
	page := api.want(api.do("GET", "/messages?user_id=bob", ""), 200, "")
	messages, _ := page.body["messages"].([]any)
	if len(messages) != 1 {
		t.Fatalf("GET /messages = %v", page.body)
	}
	own, _ := messages[0].(map[string]any)["own_reactions"].([]any)
	if len(own) != 1 || own[0].(map[string]any)["type"] != "like" {
		t.Errorf("bob's own reactions = %v", messages[0])
	}
	list := api.want(api.do("GET", "/messages/"+id+"/reactions?type=like", ""), 200, "")
	if reactions, _ := list.body["reactions"].([]any); len(reactions) != 1 {
		t.Errorf("GET reactions = %v", list.body)
	}
	if got := api.do("DELETE", "/messages/"+id+"/reactions/like?user_id=bob", ""); got.status != 204 {
		t.Errorf("DELETE = %d %v", got.status, got.body)
	}
	api.want(api.do("DELETE", "/messages/"+id+"/reactions/like?user_id=bob", ""), 404, "not_found")
	if n := len(api.store.published); n != 3 {
		t.Errorf("%d reaction changes published, want 3 (two puts, one delete)", n)
	}

	unknown := "0192f0a4-8a4b-7cc1-9e8a-5a3b1c2d3e4f"
	api.want(api.do("GET", "/messages/"+unknown, ""), 404, "not_found")
	api.want(api.do("POST", "/messages/"+unknown+"/reactions", `{"type":"like","user_id":"bob"}`), 404, "not_found")
	api.want(api.do("GET", "/nowhere", ""), 404, "not_found")
	api.want(api.do("PUT", "/messages", ""), 405, "method_not_allowed")
}

func TestFastChannels(t *testing.T) {
	t.Parallel()
	api := newFastAPI(t)
	general := api.want(api.do("POST", "/channels/general/messages", `{"text":"hi, general","user_id":"alice"}`), 201, "")
	if general.body["channel_id"] != "general" {
		t.Errorf("POST /channels/general/messages = %v", general.body)
	}
	plain := api.want(api.do("POST", "/messages", `{"text":"hi","user_id":"alice"}`), 201, "")
	if plain.body["channel_id"] != messageapi.DefaultChannel {
		t.Errorf("POST /messages = %v", plain.body)
	}
	for path, want := range map[string]string{
		"/channels/general/messages": "hi, general", "/messages": "hi", "/channels/default/messages": "hi", "/channels/nobody-here/messages": "",
	} {
		page := api.want(api.do("GET", path, ""), 200, "")
		messages, _ := page.body["messages"].([]any)
		var texts []string
		for _, m := range messages {
			texts = append(texts, m.(map[string]any)["text"].(string))
		}
		if strings.Join(texts, ",") != want {
			t.Errorf("GET %s = %v, want %q", path, texts, want)
		}
	}
	api.want(api.do("GET", "/channels/no%20spaces/messages", ""), 400, "invalid_argument")
	api.want(api.do("GET", "/channels//messages", ""), 404, "not_found")
	api.want(api.do("POST", "/channels//messages", `{"text":"hi","user_id":"alice"}`), 404, "not_found")
	if n := len(api.store.messages); n != 2 {
		t.Errorf("%d messages stored, want the 2 posted to real channels", n)
	}
	api.want(api.do("POST", "/channels/"+strings.Repeat("x", 65)+"/messages", `{"text":"hi","user_id":"alice"}`), 400, "invalid_argument")
	// A client's id reused in another channel is a conflict.
	api.want(api.do("POST", "/channels/other/messages", `{"id":"`+general.body["id"].(string)+`","text":"hi, general","user_id":"alice"}`), 409, "conflict")
	api.want(api.do("POST", "/channels/general/messages", `{"id":"`+general.body["id"].(string)+`","text":"hi, general","user_id":"alice"}`), 200, "")
}

func TestFastEditAndDelete(t *testing.T) {
	t.Parallel()
	api := newFastAPI(t)
	id, _ := api.want(api.do("POST", "/messages", `{"text":"hello","user_id":"alice"}`), 201, "").body["id"].(string)
	api.want(api.do("POST", "/messages/"+id+"/reactions", `{"type":"like","user_id":"bob"}`), 201, "")

	api.want(api.do("PATCH", "/messages/"+id, `{"text":"mine","user_id":"bob"}`), 403, "permission_denied")
	api.want(api.do("PATCH", "/messages/"+id, `{"text":" ","user_id":"alice"}`), 400, "invalid_argument")
	api.want(api.do("PATCH", "/messages/"+id, `{"user_id":"alice"}`), 400, "invalid_argument")
	edited := api.want(api.do("PATCH", "/messages/"+id, `{"text":"hello, all","user_id":"alice"}`), 200, "")
	if edited.body["text"] != "hello, all" || edited.body["updated_at"] == nil {
		t.Errorf("PATCH = %v", edited.body)
	}
	if got := api.store.messages[id].Text; got != "hello, all" {
		t.Errorf("stored text = %q after the edit", got)
	}

	api.want(api.do("DELETE", "/messages/"+id+"?user_id=bob", ""), 403, "permission_denied")
	api.want(api.do("DELETE", "/messages/"+id, ""), 400, "invalid_argument")
	for range 2 { // a second delete changes nothing, and succeeds
		if got := api.do("DELETE", "/messages/"+id+"?user_id=alice", ""); got.status != 204 {
			t.Fatalf("DELETE = %d %v", got.status, got.body)
		}
	}
	tomb := api.want(api.do("GET", "/messages/"+id, ""), 200, "")
	if tomb.body["deleted_at"] == nil || tomb.body["text"] != "" {
		t.Errorf("the tombstone = %v", tomb.body)
	}
	api.want(api.do("POST", "/messages/"+id+"/reactions", `{"type":"like","user_id":"bob"}`), 404, "not_found")
	api.want(api.do("PATCH", "/messages/"+id, `{"text":"back","user_id":"alice"}`), 404, "not_found")
	api.want(api.do("PATCH", "/messages/0192f0a4-8a4b-7cc1-9e8a-5a3b1c2d3e4f", `{"text":"x","user_id":"alice"}`), 404, "not_found")

	var types []string
	entries, _ := api.feed.after("")
	for _, e := range entries {
		types = append(types, e.Type)
	}
	if want := "message.new message.updated message.deleted message.deleted"; strings.Join(types, " ") != want {
		t.Errorf("live events = %v, want %s", types, want)
	}
}

func TestFastBadInputChangesNothing(t *testing.T) {
	t.Parallel()
	api := newFastAPI(t)
	bad := api.want(api.do("POST", "/messages", `{"text":" ","user_id":"a b","extra":1}`), 400, "invalid_argument")
	if fields, _ := bad.body["fields"].(map[string]any); fields["extra"] == nil {
		t.Errorf("an unknown field: %v", bad.body)
	}
	bad = api.want(api.do("POST", "/messages", `{"text":" ","user_id":"a b"}`), 400, "invalid_argument")
	if fields, _ := bad.body["fields"].(map[string]any); fields["text"] != messageapi.TextRule || fields["user_id"] != messageapi.UserIDRule {
		t.Errorf("bad fields: %v", bad.body)
	}
	api.want(api.do("GET", "/messages?limit=0&page=2&cursor=x", ""), 400, "invalid_argument")
	api.want(api.do("GET", "/events?duration=2h", ""), 400, "invalid_argument")
	if len(api.store.messages) != 0 || len(api.store.published) != 0 {
		t.Errorf("bad requests stored %d messages and published %d changes", len(api.store.messages), len(api.store.published))
	}
}

// TestFastUnavailableStorage: a failing dependency is a 503 with
// Retry-After, and its error stays in the log.
func TestFastUnavailableStorage(t *testing.T) {
	t.Parallel()
	api := newFastAPI(t)
	api.store.failWith(messageapi.Unavailable("database", errors.New("dial tcp 10.0.0.1:5432: connection refused")))
	for _, r := range []struct{ method, path, body string }{
		{"POST", "/messages", `{"text":"hi","user_id":"alice"}`},
		{"GET", "/messages", ""},
		{"GET", "/messages/0192f0a4-8a4b-7cc1-9e8a-5a3b1c2d3e4f", ""},
	} {
		got := api.want(api.do(r.method, r.path, r.body), 503, "unavailable")
		if got.header.Get("Retry-After") == "" || strings.Contains(got.body["error"].(string), "10.0.0.1") {
			t.Errorf("%s %s = %v, Retry-After %q", r.method, r.path, got.body, got.header.Get("Retry-After"))
		}
	}
}

func TestFastTokensAndRateLimits(t *testing.T) {
	t.Parallel()
	cfg := auth.Config{Secret: []byte("test-secret-0123456789abcdef0123456789"), Leeway: time.Second}
	api := newFastAPI(t, func(c *httpapi.Config) {
		c.Auth, c.RateLimit, c.RateWindow = auth.NewVerifier(cfg), 3, time.Minute
	})
	alice, err := auth.Mint(cfg, "alice", false, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	noToken := api.want(api.do("POST", "/messages", `{"text":"hi"}`), 401, "unauthenticated")
	if !strings.HasPrefix(noToken.header.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("401 without a challenge: %v", noToken.header)
	}
	api.want(api.do("POST", "/messages", `{"text":"hi","user_id":"mallory"}`, "Authorization", "Bearer "+alice), 403, "permission_denied")
	ok := api.want(api.do("POST", "/messages", `{"text":"hi"}`, "Authorization", "Bearer "+alice), 201, "")
	if ok.body["user_id"] != "alice" {
		t.Errorf("a user token's message is by %v", ok.body["user_id"])
	}
	for _, h := range []string{"X-Ratelimit-Limit", "X-Ratelimit-Remaining", "X-Ratelimit-Reset"} {
		if ok.header.Get(h) == "" {
			t.Errorf("no %s on an answer under the limit", h)
		}
	}
	// The 401 counted against the address; the 403, the 201 and this read
	// against alice, whose third request it is.
	last := api.want(api.do("GET", "/messages", "", "Authorization", "Bearer "+alice), 200, "")
	if last.header.Get("X-Ratelimit-Remaining") != "0" {
		t.Errorf("the last request within the limit: X-RateLimit-Remaining %q, want 0", last.header.Get("X-Ratelimit-Remaining"))
	}
	limited := api.want(api.do("GET", "/messages", "", "Authorization", "Bearer "+alice), 429, "rate_limited")
	if limited.header.Get("Retry-After") == "" || limited.header.Get("X-Ratelimit-Remaining") != "0" {
		t.Errorf("429 headers: %v", limited.header)
	}
	reset, err := strconv.ParseInt(limited.header.Get("X-Ratelimit-Reset"), 10, 64)
	if now := time.Now().Unix(); err != nil || reset < now || reset > now+60 {
		t.Errorf("X-RateLimit-Reset %q, want the end of the window in Unix seconds", limited.header.Get("X-Ratelimit-Reset"))
	}
}

// sseLines sends the rest of each line of an event stream that starts
// with prefix, and closes when the stream ends.
func sseLines(body io.Reader, prefix string) <-chan string {
	out := make(chan string, 8)
	go func() {
		sc := bufio.NewScanner(body)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), prefix); ok {
				out <- rest
			}
		}
		close(out)
	}()
	return out
}

// TestFastEvents: a stream gets ready, then the events of new messages,
// from the hub reading the feed.
func TestFastEvents(t *testing.T) {
	t.Parallel()
	api := newFastAPI(t)
	for api.hub.Position() == "" { // the hub has found its place in the feed
		time.Sleep(5 * time.Millisecond)
	}
	resp, err := api.Client().Get(api.URL + "/events?duration=5s")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("GET /events = %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	events := sseLines(resp.Body, "event: ")
	if typ := <-events; typ != "ready" {
		t.Fatalf("first event %q, want ready", typ)
	}
	api.want(api.do("POST", "/messages", `{"text":"live","user_id":"alice"}`), 201, "")
	select {
	case typ := <-events:
		if typ != messageapi.MessageNew {
			t.Errorf("event %q, want %s", typ, messageapi.MessageNew)
		}
	case <-time.After(3 * time.Second):
		t.Error("no event for the new message")
	}

	// A stream of one channel gets the events of that channel only.
	general, err := api.Client().Get(api.URL + "/events?channel_id=general&duration=5s")
	if err != nil {
		t.Fatal(err)
	}
	defer general.Body.Close()
	data := sseLines(general.Body, "data: ")
	if d := <-data; d != "{}" {
		t.Fatalf("first data %q, want ready's {}", d)
	}
	api.want(api.do("POST", "/messages", `{"text":"elsewhere","user_id":"alice"}`), 201, "")
	api.want(api.do("POST", "/channels/general/messages", `{"text":"in general","user_id":"alice"}`), 201, "")
	select {
	case d := <-data:
		if !strings.Contains(d, `"text":"in general"`) || !strings.Contains(d, `"channel_id":"general"`) {
			t.Errorf("the channel's stream got %s, want the message in general", d)
		}
	case <-time.After(3 * time.Second):
		t.Error("no event for the message in the channel")
	}
	api.want(api.do("GET", "/events?channel_id=no%20spaces", ""), 400, "invalid_argument")
}
