package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"

	"messageapi/auth"
	"messageapi/httpapi"
)

// testSecret is an HS256 secret of the required length.
const testSecret = "test-secret-0123456789abcdef0123456789"

// testKeyPairs are an RSA and an Ed25519 key pair, made once: RSA key
// generation is slow under the race detector.
var testKeyPairs = sync.OnceValues(func() (*rsa.PrivateKey, ed25519.PrivateKey) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	return rsaKey, edKey
})

// writeJWKS writes a JWKS file of keys to a temporary directory.
func writeJWKS(t *testing.T, keys ...jose.JSONWebKey) string {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// testJWKS writes the public halves of the test key pairs, with kids
// rsa-1 and ed-1, as a JWKS file.
func testJWKS(t *testing.T) string {
	rsaKey, edKey := testKeyPairs()
	return writeJWKS(t,
		jose.JSONWebKey{Key: &rsaKey.PublicKey, KeyID: "rsa-1", Algorithm: "RS256", Use: "sig"},
		jose.JSONWebKey{Key: edKey.Public(), KeyID: "ed-1", Algorithm: "EdDSA", Use: "sig"},
	)
}

// claims returns the claims of a token for sub that expires in an hour,
// changed by the given edits.
func claims(sub string, edits ...func(jwt.MapClaims)) jwt.MapClaims {
	c := jwt.MapClaims{"sub": sub, "exp": time.Now().Add(time.Hour).Unix()}
	if sub == "" {
		delete(c, "sub")
	}
	for _, e := range edits {
		e(c)
	}
	return c
}

func asServer(c jwt.MapClaims) { c["role"] = auth.RoleServer }

// sign signs claims with method and key; kid, when given, goes in the
// header.
func sign(t *testing.T, method jwt.SigningMethod, key any, kid string, c jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// userToken is a valid HS256 token of testSecret for sub.
func userToken(t *testing.T, sub string, edits ...func(jwt.MapClaims)) string {
	return sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", claims(sub, edits...))
}

func bearer(token string) []string { return []string{"Bearer " + token} }

// TestVerifyTokens tries good and bad tokens against a verifier with an
// HS256 secret, one with JWKS keys, and one that checks aud and iss: the
// verifier's verdict, then the HTTP answer to a write that carries it.
func TestVerifyTokens(t *testing.T) {
	t.Parallel()
	rsaKey, edKey := testKeyPairs()
	keys, err := auth.LoadJWKS(testJWKS(t))
	if err != nil {
		t.Fatal(err)
	}
	rsaPublicDER, err := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	rsaPublicPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: rsaPublicDER})
	rsaPublicJWK, _ := json.Marshal(jose.JSONWebKey{Key: &rsaKey.PublicKey, KeyID: "rsa-1", Algorithm: "RS256", Use: "sig"})
	otherRSA, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	_, otherEd, _ := ed25519.GenerateKey(rand.Reader)
	leeway := 30 * time.Second
	configs := map[string]auth.Config{
		"secret":  {Secret: []byte(testSecret), Leeway: leeway},
		"jwks":    {Keys: keys, Leeway: leeway},
		"aud+iss": {Secret: []byte(testSecret), Leeway: leeway, Audience: "message-api", Issuer: "https://id.example.com"},
	}
	secret := []byte(testSecret)
	audIss := func(aud, iss string) func(jwt.MapClaims) {
		return func(c jwt.MapClaims) {
			if aud != "" {
				c["aud"] = aud
			}
			if iss != "" {
				c["iss"] = iss
			}
		}
	}
	set := func(k string, v any) func(jwt.MapClaims) { return func(c jwt.MapClaims) { c[k] = v } }
	unset := func(k string) func(jwt.MapClaims) { return func(c jwt.MapClaims) { delete(c, k) } }
	hs := func(edits ...func(jwt.MapClaims)) []string {
		return bearer(sign(t, jwt.SigningMethodHS256, secret, "", claims("alice", edits...)))
	}
	valid := sign(t, jwt.SigningMethodHS256, secret, "", claims("alice"))
	parts := strings.Split(valid, ".")
	otherPayload := strings.Split(sign(t, jwt.SigningMethodHS256, secret, "", claims("mallory")), ".")[1]
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, claims("alice")).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name, config string
		header       []string
		sub          string // the identity of an accepted token; "" for a refused one
		server       bool
		code         string // RFC 6750 error of a refused token
	}{
		{"HS256 user token", "secret", hs(), "alice", false, ""},
		{"HS256 server token", "secret", hs(asServer), "alice", true, ""},
		{"scheme in lower case", "secret", []string{"bearer " + valid}, "alice", false, ""},
		{"RS256 with its kid", "jwks", bearer(sign(t, jwt.SigningMethodRS256, rsaKey, "rsa-1", claims("alice"))), "alice", false, ""},
		{"RS256 without a kid", "jwks", bearer(sign(t, jwt.SigningMethodRS256, rsaKey, "", claims("alice", asServer))), "alice", true, ""},
		{"EdDSA with its kid", "jwks", bearer(sign(t, jwt.SigningMethodEdDSA, edKey, "ed-1", claims("alice"))), "alice", false, ""},
		{"aud and iss as configured", "aud+iss", hs(audIss("message-api", "https://id.example.com")), "alice", false, ""},
		{"aud in a list", "aud+iss", hs(audIss("", "https://id.example.com"), set("aud", []string{"other", "message-api"})), "alice", false, ""},
		{"expired within the leeway", "secret", hs(set("exp", time.Now().Add(-10*time.Second).Unix())), "alice", false, ""},
		{"nbf within the leeway", "secret", hs(set("nbf", time.Now().Add(10*time.Second).Unix())), "alice", false, ""},
		{"a role that is not server", "secret", hs(set("role", "authenticated")), "alice", false, ""},
		{"a role list", "secret", hs(set("role", []string{"server"})), "alice", false, ""},

		{"expired", "secret", hs(set("exp", time.Now().Add(-time.Minute).Unix())), "", false, "invalid_token"},
		{"not yet valid", "secret", hs(set("nbf", time.Now().Add(time.Minute).Unix())), "", false, "invalid_token"},
		{"no exp", "secret", hs(unset("exp")), "", false, "invalid_token"},
		{"exp not a number", "secret", hs(set("exp", "tomorrow")), "", false, "invalid_token"},
		{"signed with another secret", "secret", bearer(sign(t, jwt.SigningMethodHS256, []byte("another-secret-0123456789abcdef012345"), "", claims("alice"))), "", false, "invalid_token"},
		{"payload swapped under a signature", "secret", bearer(parts[0] + "." + otherPayload + "." + parts[2]), "", false, "invalid_token"},
		{"signature removed", "secret", bearer(parts[0] + "." + parts[1] + "."), "", false, "invalid_token"},
		{"alg none", "secret", bearer(none), "", false, "invalid_token"},
		{"alg none against JWKS keys", "jwks", bearer(none), "", false, "invalid_token"},
		{"HS512 with the secret", "secret", bearer(sign(t, jwt.SigningMethodHS512, secret, "", claims("alice"))), "", false, "invalid_token"},
		{"RS256 against a secret", "secret", bearer(sign(t, jwt.SigningMethodRS256, rsaKey, "rsa-1", claims("alice"))), "", false, "invalid_token"},
		{"HS256 signed with the RSA public key (PEM)", "jwks", bearer(sign(t, jwt.SigningMethodHS256, rsaPublicPEM, "rsa-1", claims("alice"))), "", false, "invalid_token"},
		{"HS256 signed with the RSA public key (DER), no kid", "jwks", bearer(sign(t, jwt.SigningMethodHS256, rsaPublicDER, "", claims("alice"))), "", false, "invalid_token"},
		{"HS256 signed with the RSA public key (JWK)", "jwks", bearer(sign(t, jwt.SigningMethodHS256, rsaPublicJWK, "rsa-1", claims("alice"))), "", false, "invalid_token"},
		{"HS256 with the secret against JWKS keys", "jwks", hs(), "", false, "invalid_token"},
		{"RS256 from another key", "jwks", bearer(sign(t, jwt.SigningMethodRS256, otherRSA, "rsa-1", claims("alice"))), "", false, "invalid_token"},
		{"EdDSA from another key", "jwks", bearer(sign(t, jwt.SigningMethodEdDSA, otherEd, "", claims("alice"))), "", false, "invalid_token"},
		{"RS256 with an unknown kid", "jwks", bearer(sign(t, jwt.SigningMethodRS256, rsaKey, "rsa-2", claims("alice"))), "", false, "invalid_token"},
		{"RS256 with the Ed25519 key's kid", "jwks", bearer(sign(t, jwt.SigningMethodRS256, rsaKey, "ed-1", claims("alice"))), "", false, "invalid_token"},
		{"PS256 with the RSA key", "jwks", bearer(sign(t, jwt.SigningMethodPS256, rsaKey, "rsa-1", claims("alice"))), "", false, "invalid_token"},
		{"wrong aud", "aud+iss", hs(audIss("someone-else", "https://id.example.com")), "", false, "invalid_token"},
		{"no aud", "aud+iss", hs(audIss("", "https://id.example.com")), "", false, "invalid_token"},
		{"wrong iss", "aud+iss", hs(audIss("message-api", "https://evil.example.com")), "", false, "invalid_token"},
		{"no iss", "aud+iss", hs(audIss("message-api", "")), "", false, "invalid_token"},
		{"no sub", "secret", bearer(sign(t, jwt.SigningMethodHS256, secret, "", claims(""))), "", false, "invalid_token"},
		{"empty sub", "secret", hs(set("sub", "")), "", false, "invalid_token"},
		{"sub not a user id", "secret", hs(set("sub", "alice smith")), "", false, "invalid_token"},
		{"sub too long", "secret", hs(set("sub", strings.Repeat("a", 129))), "", false, "invalid_token"},
		{"server token, sub not a user id", "secret", hs(asServer, set("sub", "svc:notifier")), "", false, "invalid_token"},
		{"sub not a string", "secret", hs(set("sub", 42)), "", false, "invalid_token"},
		{"Bearer x.y", "secret", []string{"Bearer x.y"}, "", false, "invalid_token"},
		{"Bearer and garbage", "secret", []string{"Bearer not-a-jwt"}, "", false, "invalid_token"},
		{"three segments of garbage", "secret", []string{"Bearer a.b.c"}, "", false, "invalid_token"},

		{"Bearer alone", "secret", []string{"Bearer"}, "", false, "invalid_request"},
		{"Bearer and a space", "secret", []string{"Bearer "}, "", false, "invalid_request"},
		{"a token with a space", "secret", []string{"Bearer " + parts[0] + " " + parts[1]}, "", false, "invalid_request"},
		{"Basic", "secret", []string{"Basic YWxpY2U6c2VjcmV0"}, "", false, "invalid_request"},
		{"a token without a scheme", "secret", []string{valid}, "", false, "invalid_request"},
		{"two Authorization headers", "secret", []string{"Bearer " + valid, "Bearer " + valid}, "", false, "invalid_request"},
		{"an empty Authorization header", "secret", []string{""}, "", false, "invalid_request"},
	}
	apis := map[string]*testAPI{}
	for name, c := range configs {
		v := auth.NewVerifier(c)
		apis[name] = newTestAPI(t, func(rc *httpapi.Config) { rc.Auth = v })
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, failure := auth.NewVerifier(configs[tt.config]).Verify(tt.header)
			switch {
			case tt.sub != "" && failure != nil:
				t.Fatalf("refused (%s: %s, %v), want accepted", failure.Code, failure.Description, failure.Cause)
			case tt.sub != "" && (id.Subject != tt.sub || id.Server != tt.server):
				t.Fatalf("identity = %+v, want subject %q, server %v", id, tt.sub, tt.server)
			case tt.sub == "" && failure == nil:
				t.Fatalf("accepted as %+v, want refused with %s", id, tt.code)
			case tt.sub == "" && failure.Code != tt.code:
				t.Errorf("refused with %q (%s), want %q", failure.Code, failure.Description, tt.code)
			}

			// The same token on a write: a user token posts as its
			// subject; a server token must name the user it acts for.
			api := apis[tt.config]
			header := http.Header{"Content-Type": {"application/json"}, "Authorization": tt.header}
			r := api.send(http.MethodPost, "/messages", header, strings.NewReader(`{"text":"hi"}`))
			switch {
			case tt.sub == "":
				checkUnauthenticated(t, r, tt.code)
				for _, h := range tt.header {
					if _, token, _ := strings.Cut(h, " "); len(token) > 8 && strings.Contains(string(r.body)+r.header.Get("WWW-Authenticate"), token) {
						t.Errorf("the answer echoes the token: %s", r.body)
					}
				}
				if failure != nil && r.json(t)["error"] != failure.Description {
					t.Errorf("error = %v, want the verifier's own description %q", r.json(t)["error"], failure.Description)
				}
			case tt.server:
				if r.status != http.StatusBadRequest || !strings.Contains(string(r.body), `"user_id"`) {
					t.Errorf("a server token without user_id: %d %s, want 400 naming user_id", r.status, r.body)
				}
			default:
				if r.status != http.StatusCreated || r.json(t)["user_id"] != tt.sub {
					t.Errorf("a user token without user_id: %d %s, want 201 by %s", r.status, r.body, tt.sub)
				}
			}
		})
	}
}

// checkUnauthenticated checks a 401: the JSON error body with code
// unauthenticated and a Bearer challenge, with the RFC 6750 error when
// there is one.
func checkUnauthenticated(t *testing.T, r response, rfcCode string) {
	t.Helper()
	if r.status != http.StatusUnauthorized {
		t.Fatalf("status = %d, want 401; body %s", r.status, r.body)
	}
	if body := r.json(t); body["code"] != "unauthenticated" || body["error"] == "" {
		t.Errorf("body = %s, want code unauthenticated with a message", r.body)
	}
	challenge := r.header.Get("WWW-Authenticate")
	if !strings.HasPrefix(challenge, "Bearer") {
		t.Errorf("WWW-Authenticate = %q, want a Bearer challenge", challenge)
	}
	if hasError := strings.Contains(challenge, "error="); (rfcCode != "") != hasError ||
		rfcCode != "" && !strings.Contains(challenge, `error="`+rfcCode+`"`) {
		t.Errorf("WWW-Authenticate = %q, want error %q", challenge, rfcCode)
	}
}

// authedAPI is the API with HS256 authentication on, and the requests it
// takes.
type authedAPI struct{ *testAPI }

func newAuthedAPI(t *testing.T, options ...func(*httpapi.Config)) authedAPI {
	v := auth.NewVerifier(auth.Config{Secret: []byte(testSecret), Leeway: 30 * time.Second})
	return authedAPI{newTestAPI(t, append([]func(*httpapi.Config){func(c *httpapi.Config) { c.Auth = v }}, options...)...)}
}

// as makes a request with token ("" for none) and a JSON body when body
// is not empty.
func (a authedAPI) as(token, method, path, body string) response {
	a.t.Helper()
	header := http.Header{}
	if token != "" {
		header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		header.Set("Content-Type", "application/json")
	}
	return a.send(method, path, header, strings.NewReader(body))
}

func wantStatus(t *testing.T, r response, status int, code string) map[string]any {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d; body %s", r.status, status, r.body)
	}
	if code == "" {
		if len(r.body) == 0 {
			return nil
		}
		return r.json(t)
	}
	body := r.json(t)
	if body["code"] != code {
		t.Errorf("code = %v, want %s; body %s", body["code"], code, r.body)
	}
	return body
}

// TestUserTokensActOnlyAsTheirUser: a user token posts and reacts only as
// its subject, deletes only its own reactions, and fills an omitted
// user_id; a server token acts for any user it names and must name one.
func TestUserTokensActOnlyAsTheirUser(t *testing.T) {
	t.Parallel()
	api := newAuthedAPI(t)
	alice, bob, backend := userToken(t, "alice"), userToken(t, "bob"), userToken(t, "backend", asServer)

	wantStatus(t, api.as(alice, "POST", "/messages", `{"text":"as bob","user_id":"bob"}`), 403, "permission_denied")
	m := wantStatus(t, api.as(alice, "POST", "/messages", `{"text":"mine"}`), 201, "")
	if m["user_id"] != "alice" {
		t.Errorf("omitted user_id: message by %v, want alice", m["user_id"])
	}
	wantStatus(t, api.as(alice, "POST", "/messages", `{"text":"mine too","user_id":"alice"}`), 201, "")
	reactions := "/messages/" + m["id"].(string) + "/reactions"

	wantStatus(t, api.as(alice, "POST", reactions, `{"type":"like","user_id":"bob"}`), 403, "permission_denied")
	wantStatus(t, api.as(bob, "POST", reactions, `{"type":"like"}`), 201, "")
	wantStatus(t, api.as(alice, "DELETE", reactions+"/like?user_id=bob", ""), 403, "permission_denied")
	list := wantStatus(t, api.as("", "GET", reactions, ""), 200, "")
	if got := list["reactions"].([]any); len(got) != 1 || got[0].(map[string]any)["user_id"] != "bob" {
		t.Errorf("reactions = %v, want bob's like alone", got)
	}
	// alice has no like to delete, whatever she names.
	wantStatus(t, api.as(alice, "DELETE", reactions+"/like", ""), 404, "not_found")
	wantStatus(t, api.as(bob, "DELETE", reactions+"/like", ""), 204, "")

	// A server token acts for anyone it names, and must name someone.
	for _, user := range []string{"alice", "bob"} {
		if r := wantStatus(t, api.as(backend, "POST", "/messages", `{"text":"relayed","user_id":"`+user+`"}`), 201, ""); r["user_id"] != user {
			t.Errorf("server token posted as %v, want %s", r["user_id"], user)
		}
		wantStatus(t, api.as(backend, "POST", reactions, `{"type":"love","user_id":"`+user+`"}`), 201, "")
	}
	wantStatus(t, api.as(backend, "DELETE", reactions+"/love?user_id=bob", ""), 204, "")
	for _, r := range []response{
		api.as(backend, "POST", "/messages", `{"text":"by whom?"}`),
		api.as(backend, "POST", reactions, `{"type":"love"}`),
		api.as(backend, "DELETE", reactions+"/love", ""),
	} {
		if body := wantStatus(t, r, 400, "invalid_argument"); body["fields"].(map[string]any)["user_id"] == nil {
			t.Errorf("server token without user_id: %s, want user_id named", r.body)
		}
	}
	msgs := wantStatus(t, api.as("", "GET", "/messages", ""), 200, "")["messages"].([]any)
	if len(msgs) != 4 {
		t.Errorf("%d messages stored, want 4 (2 by alice, 2 relayed)", len(msgs))
	}
}

// writeRoutes is one request per write route, by route pattern, naming the
// user alice. id is an existing message. TestEveryWriteRouteChecksTheUser
// fails for a write route missing here, so a new route cannot forget the
// rule.
func writeRoutes(id string) map[string]struct{ path, body string } {
	return map[string]struct{ path, body string }{
		"POST /messages":                         {"/messages", `{"text":"hi","user_id":"alice"}`},
		"POST /channels/{channel_id}/messages":   {"/channels/general/messages", `{"text":"hi","user_id":"alice"}`},
		"POST /messages/{id}/reactions":          {"/messages/" + id + "/reactions", `{"type":"like","user_id":"alice"}`},
		"DELETE /messages/{id}/reactions/{type}": {"/messages/" + id + "/reactions/like?user_id=alice", ""},
		"PATCH /messages/{id}":                   {"/messages/" + id, `{"text":"edited","user_id":"alice"}`},
		"DELETE /messages/{id}":                  {"/messages/" + id + "?user_id=alice", ""},
	}
}

// TestEveryWriteRouteChecksTheUser walks the router: every route that is
// not a read refuses a request without a token (401) and one by another
// user (403), and stores nothing.
func TestEveryWriteRouteChecksTheUser(t *testing.T) {
	t.Parallel()
	api := newAuthedAPI(t)
	alice, mallory := userToken(t, "alice"), userToken(t, "mallory")
	m := wantStatus(t, api.as(alice, "POST", "/messages", `{"text":"seed"}`), 201, "")
	id := m["id"].(string)
	wantStatus(t, api.as(alice, "POST", "/messages/"+id+"/reactions", `{"type":"like"}`), 201, "")
	routes := writeRoutes(id)

	// The routes alone: walking them serves no request.
	srv, err := httpapi.New(httpapi.UseCases{})
	if err != nil {
		t.Fatal(err)
	}
	router := srv.Handler(httpapi.Config{}).(chi.Routes)
	checked := 0
	err = chi.Walk(router, func(method, pattern string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		if method == http.MethodGet || method == http.MethodHead || method == http.MethodOptions {
			return nil
		}
		req, ok := routes[method+" "+pattern]
		if !ok {
			t.Errorf("write route %s %s is not in writeRoutes: add it, so its user rule is tested", method, pattern)
			return nil
		}
		checked++
		checkUnauthenticated(t, api.as("", method, req.path, req.body), "")
		wantStatus(t, api.as(mallory, method, req.path, req.body), 403, "permission_denied")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked != len(routes) {
		t.Errorf("checked %d write routes, writeRoutes has %d", checked, len(routes))
	}
	if msgs := wantStatus(t, api.as("", "GET", "/messages", ""), 200, "")["messages"].([]any); len(msgs) != 1 {
		t.Errorf("%d messages, want the seed alone", len(msgs))
	}
	list := wantStatus(t, api.as("", "GET", "/messages/"+id+"/reactions", ""), 200, "")["reactions"].([]any)
	if len(list) != 1 || list[0].(map[string]any)["user_id"] != "alice" {
		t.Errorf("reactions = %v, want alice's like alone", list)
	}
}

// TestReadsArePublicUnlessConfigured: with auth on, reads need no token
// unless -auth-reads is set; HEAD follows GET, and OPTIONS, which tells
// only the methods of a path, needs none. A bad token is refused even
// where none is needed.
func TestReadsArePublicUnlessConfigured(t *testing.T) {
	t.Parallel()
	open := newAuthedAPI(t)
	closed := newAuthedAPI(t, func(c *httpapi.Config) { c.AuthReads = true })
	alice := userToken(t, "alice")
	for _, method := range []string{"GET", "HEAD"} {
		wantStatus(t, open.as("", method, "/messages", ""), 200, "")
		wantStatus(t, closed.as(alice, method, "/messages", ""), 200, "")
	}
	checkUnauthenticated(t, closed.as("", "GET", "/messages", ""), "")
	if r := closed.as("", "HEAD", "/messages", ""); r.status != http.StatusUnauthorized || !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("HEAD without a token = %d, WWW-Authenticate %q; want 401 with a Bearer challenge", r.status, r.header.Get("WWW-Authenticate"))
	}
	wantStatus(t, open.as("", "OPTIONS", "/messages", ""), 204, "")
	wantStatus(t, closed.as("", "OPTIONS", "/messages", ""), 204, "")
	wantStatus(t, closed.as(alice, "OPTIONS", "/messages", ""), 204, "")
	checkUnauthenticated(t, open.as("not-a-token", "GET", "/messages", ""), "invalid_token")
	checkUnauthenticated(t, open.as(userToken(t, "alice", func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Hour).Unix() }), "GET", "/messages", ""), "invalid_token")
}

// TestOpenModeIgnoresTokens: with no auth configured the API is as open
// as ever: the body's user_id is the user, and Authorization is ignored.
func TestOpenModeIgnoresTokens(t *testing.T) {
	t.Parallel()
	api := authedAPI{newTestAPI(t)}
	r := wantStatus(t, api.as("garbage", "POST", "/messages", `{"text":"hi","user_id":"bob"}`), 201, "")
	if r["user_id"] != "bob" {
		t.Errorf("user_id = %v, want bob", r["user_id"])
	}
	wantStatus(t, api.as(userToken(t, "alice"), "POST", "/messages", `{"text":"hi","user_id":"bob"}`), 201, "")
	wantStatus(t, api.as("", "POST", "/messages", `{"text":"hi"}`), 400, "invalid_argument")
}

// TestRateLimitPerUser: with a token, the limit is the user's wherever it
// connects from; bad tokens and anonymous requests share their address's.
func TestRateLimitPerUser(t *testing.T) {
	t.Parallel()
	api := newAuthedAPI(t, func(c *httpapi.Config) { c.RateLimit, c.RateWindow = 2, time.Minute })
	alice, bob, carol := userToken(t, "alice"), userToken(t, "bob"), userToken(t, "carol")
	wantStatus(t, api.as(alice, "GET", "/messages", ""), 200, "")
	wantStatus(t, api.as(alice, "POST", "/messages", `{"text":"hi"}`), 201, "")
	wantStatus(t, api.as(alice, "GET", "/messages", ""), 429, "rate_limited")
	wantStatus(t, api.as(bob, "GET", "/messages", ""), 200, "")

	// Token guessing is throttled by address, and does not cost users on
	// that address their own limits.
	checkUnauthenticated(t, api.as("guess.1.x", "GET", "/messages", ""), "invalid_token")
	checkUnauthenticated(t, api.as("guess.2.x", "POST", "/messages", `{"text":"hi"}`), "invalid_token")
	wantStatus(t, api.as("guess.3.x", "GET", "/messages", ""), 429, "rate_limited")
	wantStatus(t, api.as("", "GET", "/messages", ""), 429, "rate_limited")
	wantStatus(t, api.as(carol, "GET", "/messages", ""), 200, "")
}

// TestCORS: a preflight from an allowed origin is answered with the CORS
// headers before any token is asked for; one from another origin gets
// none; with no origins configured there are no CORS headers at all.
func TestCORS(t *testing.T) {
	t.Parallel()
	const origin = "https://chat.example.com"
	withCORS := newAuthedAPI(t, func(c *httpapi.Config) { c.CORSOrigins = []string{origin} })
	without := newAuthedAPI(t)
	preflight := func(api authedAPI, from string) response {
		return api.send(http.MethodOptions, "/messages", http.Header{
			"Origin": {from}, "Access-Control-Request-Method": {"POST"},
			"Access-Control-Request-Headers": {"authorization, content-type, x-request-id"},
		}, nil)
	}

	r := preflight(withCORS, origin)
	if r.status != http.StatusOK && r.status != http.StatusNoContent {
		t.Errorf("preflight = %d %s, want 200 or 204", r.status, r.body)
	}
	if got := r.header.Get("Access-Control-Allow-Origin"); got != origin {
		t.Errorf("Access-Control-Allow-Origin = %q, want %q", got, origin)
	}
	if got := r.header.Get("Access-Control-Allow-Methods"); got != "POST" {
		t.Errorf("Access-Control-Allow-Methods = %q, want POST", got)
	}
	if got := r.header.Get("Access-Control-Allow-Headers"); !strings.Contains(got, "Authorization") || !strings.Contains(got, "Content-Type") || !strings.Contains(got, "X-Request-Id") {
		t.Errorf("Access-Control-Allow-Headers = %q, want Authorization, Content-Type and X-Request-ID", got)
	}
	if r.header.Get("Allow") != "" || r.header.Get("Access-Control-Allow-Credentials") != "" {
		t.Errorf("preflight reached the router or allows credentials: %v", r.header)
	}

	r = preflight(withCORS, "https://evil.example.com")
	if got := r.header.Get("Access-Control-Allow-Origin"); got != "" {
		t.Errorf("preflight from another origin: Access-Control-Allow-Origin = %q, want none", got)
	}

	// An actual request from the origin may read the headers the API sends.
	r = withCORS.send(http.MethodPost, "/messages", http.Header{
		"Origin": {origin}, "Content-Type": {"application/json"}, "Authorization": {"Bearer " + userToken(t, "alice")},
	}, strings.NewReader(`{"text":"from a browser"}`))
	wantStatus(t, r, 201, "")
	expose := r.header.Get("Access-Control-Expose-Headers")
	for _, h := range []string{"Location", "Retry-After", "X-Request-Id"} {
		if !strings.Contains(expose, h) {
			t.Errorf("Access-Control-Expose-Headers = %q, want %s", expose, h)
		}
	}

	// No origins configured: an OPTIONS is the router's, and no CORS.
	r = preflight(without, origin)
	if r.status != http.StatusNoContent || r.header.Get("Allow") == "" {
		t.Errorf("preflight without CORS = %d, Allow %q; want the router's 204 with Allow", r.status, r.header.Get("Allow"))
	}
	for name := range r.header {
		if strings.HasPrefix(name, "Access-Control-") {
			t.Errorf("no origins configured, yet %s: %s", name, r.header.Get(name))
		}
	}
}

func TestLoadJWKSRefusesKeysItCannotUse(t *testing.T) {
	t.Parallel()
	rsaKey, edKey := testKeyPairs()
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		keys []jose.JSONWebKey
		want string
	}{
		{"a private RSA key", []jose.JSONWebKey{{Key: rsaKey, KeyID: "k"}}, "public keys only"},
		{"a private Ed25519 key", []jose.JSONWebKey{{Key: edKey, KeyID: "k"}}, "public keys only"},
		{"a symmetric key", []jose.JSONWebKey{{Key: []byte(testSecret), KeyID: "k"}}, "public keys only"},
		{"a 1024-bit RSA key", []jose.JSONWebKey{{Key: &small.PublicKey, KeyID: "k"}}, "2048"},
		{"an RSA key for RS512", []jose.JSONWebKey{{Key: &rsaKey.PublicKey, KeyID: "k", Algorithm: "RS512"}}, "RS512"},
		{"a kid used twice", []jose.JSONWebKey{{Key: &rsaKey.PublicKey, KeyID: "k"}, {Key: edKey.Public(), KeyID: "k"}}, "twice"},
		{"only an encryption key", []jose.JSONWebKey{{Key: &rsaKey.PublicKey, KeyID: "k", Use: "enc"}}, "no signing key"},
		{"no keys", nil, "no signing key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := auth.LoadJWKS(writeJWKS(t, tt.keys...))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("loadJWKS = %v, want an error saying %q", err, tt.want)
			}
		})
	}
	path := filepath.Join(t.TempDir(), "ec.json")
	ec := `{"keys":[{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}`
	if err := os.WriteFile(path, []byte(ec), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := auth.LoadJWKS(path); err == nil || !strings.Contains(err.Error(), "only RSA") {
		t.Errorf("an EC key: %v, want refused", err)
	}
}

// TestRefusedRequestsAreCountedByRoute: a request that middleware answers
// before routing (here 401) is counted under the route it was for, and
// only a path no route has is "unmatched".
func TestRefusedRequestsAreCountedByRoute(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	api := newAuthedAPI(t, func(c *httpapi.Config) { c.Metrics = httpapi.NewMetrics(reg) })
	checkUnauthenticated(t, api.as("", "POST", "/messages", `{"text":"hi"}`), "")
	checkUnauthenticated(t, api.as("", "DELETE", "/messages/0192f0a4-8a4b-7cc1-9e8a-5a3b1c2d3e4f/reactions/like", ""), "")
	if r := api.as("bad", "HEAD", "/messages", ""); r.status != http.StatusUnauthorized {
		t.Fatalf("HEAD with a bad token = %d, want 401", r.status)
	}
	wantStatus(t, api.as("", "GET", "/nowhere", ""), 404, "not_found")
	got := requestCounts(t, reg)
	for _, want := range []string{"POST /messages 401", "DELETE /messages/{id}/reactions/{type} 401", "HEAD /messages 401", "GET unmatched 404"} {
		if got[want] != 1 {
			t.Errorf("requests{%s} = %v, want 1", want, got[want])
		}
	}
}
