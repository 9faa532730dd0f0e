package e2e_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"messageapi"
)

// testSecret is the HS256 secret of the stacks with auth on.
const testSecret = "e2e-secret-0123456789abcdef0123456789"

// mint signs a token of testSecret for sub, valid for an hour, changed by
// edits.
func mint(t *testing.T, sub string, edits ...func(jwt.MapClaims)) string {
	t.Helper()
	c := jwt.MapClaims{"sub": sub, "exp": time.Now().Add(time.Hour).Unix()}
	for _, e := range edits {
		e(c)
	}
	token, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	return token
}

func asServer(c jwt.MapClaims) { c["role"] = "server" }

func expired(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Hour).Unix() }

// tokenOfNamedUser gives each request the token of the user it names, in
// its JSON body or its user_id parameter, and a server token when it
// names none or one that is not a user id.
func tokenOfNamedUser(t *testing.T) func(method, path, body string) string {
	serverToken := mint(t, "e2e-backend", asServer)
	tokens := map[string]string{}
	return func(method, path, body string) string {
		var named struct {
			UserID string `json:"user_id"`
		}
		if json.Unmarshal([]byte(body), &named) != nil || named.UserID == "" {
			if u, err := url.Parse(path); err == nil {
				named.UserID = u.Query().Get("user_id")
			}
		}
		if !messageapi.ValidUserID(named.UserID) {
			return serverToken
		}
		if tokens[named.UserID] == "" {
			tokens[named.UserID] = mint(t, named.UserID)
		}
		return tokens[named.UserID]
	}
}

// as makes a request to the stack's API with token ("" for none).
func (s *stack) as(t *testing.T, token, method, path, body string) reply {
	t.Helper()
	header := http.Header{}
	if token != "" {
		header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		header.Set("Content-Type", "application/json")
	}
	r, err := send(method, s.base+path, header, body)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// expectUnauthenticated checks a 401 with a Bearer challenge and the
// JSON error body.
func expectUnauthenticated(t *testing.T, r reply) {
	t.Helper()
	expectError(t, r, http.StatusUnauthorized, "unauthenticated")
	if got := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
		t.Errorf("WWW-Authenticate = %q, want a Bearer challenge", got)
	}
}

// writeRoute is a write request that names user_id, built for a
// message id.
type writeRoute struct {
	name, method string
	path, body   func(id, user string) string
}

// writeRoutes are all the API's write routes. The router's own list is
// checked against the same set in cmd/api (TestEveryWriteRouteChecksTheUser).
var writeRoutes = []writeRoute{
	{"post a message", http.MethodPost,
		func(string, string) string { return "/messages" },
		func(_, user string) string { return `{"text": "as ` + user + `", "user_id": "` + user + `"}` }},
	{"post a reaction", http.MethodPost,
		func(id, _ string) string { return "/messages/" + id + "/reactions" },
		func(_, user string) string { return `{"type": "like", "user_id": "` + user + `"}` }},
	{"delete a reaction", http.MethodDelete,
		func(id, user string) string { return "/messages/" + id + "/reactions/like?user_id=" + user },
		func(string, string) string { return "" }},
}

// TestAuthEndToEnd runs the real binaries with an HS256 secret: users act
// only as themselves, server tokens for anyone, every write route refuses
// a missing, expired or forged token and another user, and no refused
// request changes anything.
func TestAuthEndToEnd(t *testing.T) {
	t.Parallel()
	s := startStack(t, "AUTH_SECRET="+testSecret)
	if out := s.api.output(); !strings.Contains(out, "authentication is on") || strings.Contains(out, "authentication is off") {
		t.Errorf("start-up log does not say authentication is on:\n%s", out)
	}
	alice, bob, backend := mint(t, "alice"), mint(t, "bob"), mint(t, "backend", asServer)

	// A user posts only as themselves; an omitted user_id is the token's.
	expectError(t, s.as(t, alice, "POST", "/messages", `{"text": "I am bob", "user_id": "bob"}`), 403, "permission_denied")
	r := expect(t, s.as(t, alice, "POST", "/messages", `{"text": "hello"}`), 201)
	want(t, r, map[string]any{"user_id": "alice"})
	id, _ := r.body["id"].(string)
	want(t, expect(t, s.as(t, bob, "POST", "/messages", `{"text": "hi", "user_id": "bob"}`), 201), map[string]any{"user_id": "bob"})
	reactions := "/messages/" + id + "/reactions"

	// A user reacts and deletes only as themselves.
	expectError(t, s.as(t, alice, "POST", reactions, `{"type": "like", "user_id": "bob"}`), 403, "permission_denied")
	want(t, expect(t, s.as(t, bob, "POST", reactions, `{"type": "like"}`), 201), map[string]any{"user_id": "bob"})
	want(t, expect(t, s.as(t, alice, "POST", reactions, `{"type": "love", "score": 3}`), 201), map[string]any{"user_id": "alice"})
	expectError(t, s.as(t, alice, "DELETE", reactions+"/like?user_id=bob", ""), 403, "permission_denied")
	expectError(t, s.as(t, alice, "DELETE", reactions+"/like", ""), 404, "not_found") // alice has no like

	// Own reactions follow the token: alice's without a user_id, never
	// bob's; a server token may read anyone's.
	want(t, expect(t, s.as(t, alice, "GET", "/messages/"+id, ""), 200), map[string]any{"#own_reactions": 1, "own_reactions.0.type": "love"})
	want(t, expect(t, s.as(t, alice, "GET", "/messages", ""), 200), map[string]any{"#messages.0.own_reactions": 0, "messages.1.own_reactions.0.user_id": "alice"})
	expectError(t, s.as(t, alice, "GET", "/messages?user_id=bob", ""), 403, "permission_denied")
	expectError(t, s.as(t, alice, "GET", "/messages/"+id+"?user_id=bob", ""), 403, "permission_denied")
	want(t, expect(t, s.as(t, backend, "GET", "/messages/"+id+"?user_id=alice", ""), 200), map[string]any{"#own_reactions": 1})

	// Every write route: no token, an expired one, a forged one, a
	// token that is not a JWT, another user: refused, whatever the route.
	forged, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "bob", "exp": time.Now().Add(time.Hour).Unix()}).
		SignedString([]byte("not-the-secret-0123456789abcdef0123456789"))
	if err != nil {
		t.Fatal(err)
	}
	for _, route := range writeRoutes {
		path, body := route.path(id, "bob"), route.body(id, "bob")
		for name, token := range map[string]string{"no token": "", "expired": mint(t, "bob", expired), "forged": forged, "not a JWT": "abc.def"} {
			r := s.as(t, token, route.method, path, body)
			if r.status != http.StatusUnauthorized {
				t.Errorf("%s with %s: %d %s, want 401", route.name, name, r.status, r.raw)
				continue
			}
			expectUnauthenticated(t, r)
			if token != "" && !strings.Contains(r.header.Get("WWW-Authenticate"), `error="invalid_token"`) {
				t.Errorf("%s with %s: WWW-Authenticate %q, want error=\"invalid_token\"", route.name, name, r.header.Get("WWW-Authenticate"))
			}
		}
		if r := s.as(t, alice, route.method, path, body); r.status != http.StatusForbidden || r.body["code"] != "permission_denied" {
			t.Errorf("%s as bob with alice's token: %d %s, want 403 permission_denied", route.name, r.status, r.raw)
		}
	}

	// Nothing refused was stored: two messages, and the reactions as
	// they were.
	want(t, expect(t, s.get(t, "/messages"), 200), map[string]any{"#messages": 2, "messages.0.user_id": "bob", "messages.1.user_id": "alice"})
	want(t, expect(t, s.get(t, reactions+"?user_id=bob"), 200), map[string]any{"#reactions": 1, "reactions.0.type": "like", "reactions.0.score": 1})
	want(t, expect(t, s.get(t, reactions), 200), map[string]any{"#reactions": 2})
	s.waitFor(t, "/messages/"+id, map[string]any{"reaction_count": 2, "reaction_counts.like": 1, "reaction_counts.love": 1})

	// A server token acts for anyone it names, and must name someone.
	for _, user := range []string{"alice", "bob"} {
		want(t, expect(t, s.as(t, backend, "POST", "/messages", `{"text": "relayed", "user_id": "`+user+`"}`), 201), map[string]any{"user_id": user})
		want(t, expect(t, s.as(t, backend, "POST", reactions, `{"type": "wow", "user_id": "`+user+`"}`), 201), map[string]any{"user_id": user})
	}
	expect(t, s.as(t, backend, "DELETE", reactions+"/like?user_id=bob", ""), 204)
	expect(t, s.as(t, backend, "DELETE", reactions+"/wow?user_id=alice", ""), 204)
	for _, route := range writeRoutes {
		path, body := route.path(id, ""), strings.Replace(route.body(id, ""), `, "user_id": ""`, "", 1)
		expectError(t, s.as(t, backend, route.method, strings.TrimSuffix(path, "?user_id="), body), 400, "invalid_argument", "user_id")
	}
	want(t, expect(t, s.get(t, "/messages"), 200), map[string]any{"#messages": 4})
	want(t, expect(t, s.get(t, reactions), 200), map[string]any{"#reactions": 2, "reactions.0.user_id": "bob", "reactions.0.type": "wow"})

	// A token minted by api token with the same secret is accepted.
	minted := strings.TrimSpace(runOnce(t, "api", s.env, "token", "-sub", "carol"))
	want(t, expect(t, s.as(t, minted, "POST", "/messages", `{"text": "minted"}`), 201), map[string]any{"user_id": "carol"})

	// Reads are public by default; no CORS headers without -cors-origins.
	expect(t, s.as(t, "", "GET", "/messages/"+id, ""), 200)
	r = s.as(t, "", "OPTIONS", "/messages", "")
	if r.status != http.StatusNoContent || r.header.Get("Allow") == "" {
		t.Errorf("OPTIONS = %d, Allow %q; want 204 with Allow", r.status, r.header.Get("Allow"))
	}
	r, err = send("OPTIONS", s.base+"/messages", http.Header{"Origin": {"https://chat.example.com"}, "Access-Control-Request-Method": {"POST"}}, "")
	if err != nil {
		t.Fatal(err)
	}
	for name := range r.header {
		if strings.HasPrefix(name, "Access-Control-") {
			t.Errorf("no -cors-origins, yet the preflight got %s", name)
		}
	}
}

// TestTokenSubcommandNeedsASecret: api token refuses in one line without
// a secret, and prints nothing.
func TestTokenSubcommandNeedsASecret(t *testing.T) {
	t.Parallel()
	cmd := exec.Command(filepath.Join(buildBinaries(t), "api"), "token", "-sub", "alice")
	cmd.Env = append(os.Environ(), "AUTH_SECRET=", "AUTH_SECRET_FILE=")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err == nil || len(out) != 0 || strings.Count(strings.TrimSpace(stderr.String()), "\n") != 0 || !strings.Contains(stderr.String(), "secret") {
		t.Errorf("api token without a secret: %v, stdout %q, stderr %q; want a failure and one line about the secret", err, out, stderr.String())
	}
}

// TestAuthReadsAndCORS: with AUTH_READS reads need a token too, while a
// CORS preflight from an allowed origin is answered without one; another
// origin gets no CORS headers.
func TestAuthReadsAndCORS(t *testing.T) {
	t.Parallel()
	const origin = "https://chat.example.com"
	s := startStack(t, "AUTH_SECRET="+testSecret, "AUTH_READS=true", "CORS_ORIGINS="+origin)
	alice := mint(t, "alice")
	for _, path := range []string{"/messages", "/messages/0192f0a4-8a4b-7cc1-9e8a-5a3b1c2d3e4f", "/messages/0192f0a4-8a4b-7cc1-9e8a-5a3b1c2d3e4f/reactions"} {
		expectUnauthenticated(t, s.as(t, "", "GET", path, ""))
		expectUnauthenticated(t, s.as(t, mint(t, "alice", expired), "GET", path, ""))
	}
	if r := s.as(t, "", "HEAD", "/messages", ""); r.status != http.StatusUnauthorized {
		t.Errorf("HEAD without a token = %d, want 401", r.status)
	}
	want(t, expect(t, s.as(t, alice, "GET", "/messages", ""), 200), map[string]any{"#messages": 0})

	preflight := func(from string) reply {
		r, err := send("OPTIONS", s.base+"/messages", http.Header{
			"Origin": {from}, "Access-Control-Request-Method": {"POST"},
			"Access-Control-Request-Headers": {"Authorization, Content-Type"},
		}, "")
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	r := preflight(origin)
	if r.status != http.StatusOK && r.status != http.StatusNoContent {
		t.Errorf("preflight = %d %s, want 200 or 204 without a token", r.status, r.raw)
	}
	if r.header.Get("Access-Control-Allow-Origin") != origin || !strings.Contains(r.header.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Errorf("preflight headers = %v, want the origin allowed with Authorization", r.header)
	}
	if r := preflight("https://evil.example.com"); r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight from another origin got Access-Control-Allow-Origin %q", r.header.Get("Access-Control-Allow-Origin"))
	}
	r, err := send("POST", s.base+"/messages", http.Header{
		"Origin": {origin}, "Authorization": {"Bearer " + alice}, "Content-Type": {"application/json"},
	}, `{"text": "from a browser"}`)
	if err != nil {
		t.Fatal(err)
	}
	expect(t, r, 201)
	if r.header.Get("Access-Control-Allow-Origin") != origin || !strings.Contains(r.header.Get("Access-Control-Expose-Headers"), "Location") {
		t.Errorf("actual request headers = %v, want the origin allowed and Location exposed", r.header)
	}
}

// TestRateLimitPerUserEndToEnd: the abusing user gets 429 while another
// user on the same address is served; bad tokens are limited by address.
func TestRateLimitPerUserEndToEnd(t *testing.T) {
	t.Parallel()
	s := startStack(t, "AUTH_SECRET="+testSecret, "RATE_LIMIT=3", "RATE_LIMIT_WINDOW=1m")
	alice, bob := mint(t, "alice"), mint(t, "bob")
	for i := range 3 {
		expect(t, s.as(t, alice, "POST", "/messages", `{"text": "spam `+string(rune('a'+i))+`"}`), 201)
	}
	r := s.as(t, alice, "POST", "/messages", `{"text": "one too many"}`)
	expectError(t, r, 429, "rate_limited")
	if r.header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	expectError(t, s.as(t, alice, "GET", "/messages", ""), 429, "rate_limited")
	want(t, expect(t, s.as(t, bob, "GET", "/messages", ""), 200), map[string]any{"#messages": 3})
	expect(t, s.as(t, bob, "POST", "/messages", `{"text": "still served"}`), 201)

	for range 3 {
		expectUnauthenticated(t, s.as(t, "guessed.token.x", "POST", "/messages", `{"text": "hi", "user_id": "alice"}`))
	}
	expectError(t, s.as(t, "guessed.token.y", "POST", "/messages", `{"text": "hi", "user_id": "alice"}`), 429, "rate_limited")
	expect(t, s.as(t, bob, "GET", "/messages", ""), 200)
}
