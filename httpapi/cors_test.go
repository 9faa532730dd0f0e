package httpapi_test

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"messageapi/httpapi"
)

const corsOrigin = "https://chat.example.com"

// serve calls the API's handler without a connection, from the address
// httptest gives every request (192.0.2.1), with the header name, value
// pairs.
func (a *fastAPI) serve(method, path string, header ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	a.handler.ServeHTTP(rec, req)
	return rec
}

func (a *fastAPI) preflight(method, path string) *httptest.ResponseRecorder {
	return a.serve(http.MethodOptions, path, "Origin", corsOrigin,
		"Access-Control-Request-Method", method,
		"Access-Control-Request-Headers", "authorization, content-type, x-request-id")
}

// TestFastCORSAllowsEveryRoute: a browser on an allowed origin may send
// every method of every route the router has: each preflight is answered
// with that method allowed.
func TestFastCORSAllowsEveryRoute(t *testing.T) {
	t.Parallel()
	api := newFastAPI(t, func(c *httpapi.Config) { c.CORSOrigins = []string{corsOrigin} })
	param := regexp.MustCompile(`\{[^}]*\}`)
	routes := 0
	err := chi.Walk(api.handler.(chi.Routes), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		path := param.ReplaceAllString(route, "x")
		methods := []string{method}
		if method == http.MethodGet {
			methods = append(methods, http.MethodHead) // answered wherever GET is
		}
		for _, m := range methods {
			routes++
			rec := api.preflight(m, path)
			if rec.Code != http.StatusOK && rec.Code != http.StatusNoContent {
				t.Errorf("preflight of %s %s = %d, want 200 or 204", m, path, rec.Code)
			}
			if got := rec.Header().Get("Access-Control-Allow-Origin"); got != corsOrigin {
				t.Errorf("preflight of %s %s: Access-Control-Allow-Origin %q, want %q", m, path, got, corsOrigin)
			}
			if got := rec.Header().Get("Access-Control-Allow-Methods"); got != m {
				t.Errorf("preflight of %s %s: Access-Control-Allow-Methods %q, want %s", m, path, got, m)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if routes == 0 {
		t.Fatal("the router has no routes")
	}
}

// TestFastCORSAndRateLimit: preflights are answered before the rate
// limiter, so they neither count against an address nor are refused once
// it is limited; and the 429 a limited page gets carries the CORS
// headers, so its script can read the status and when to retry.
func TestFastCORSAndRateLimit(t *testing.T) {
	t.Parallel()
	api := newFastAPI(t, func(c *httpapi.Config) {
		c.CORSOrigins, c.RateLimit, c.RateWindow = []string{corsOrigin}, 2, time.Minute
	})
	for range 5 { // more preflights than the limit: none counts
		if rec := api.preflight(http.MethodPatch, "/messages/x"); rec.Code != http.StatusOK {
			t.Fatalf("preflight within the limit = %d, want 200", rec.Code)
		}
	}
	for i := range 2 {
		if rec := api.serve(http.MethodGet, "/messages", "Origin", corsOrigin); rec.Code != http.StatusOK {
			t.Fatalf("request %d of a limit of 2 = %d %s, want 200", i+1, rec.Code, rec.Body)
		}
	}
	for _, method := range []string{http.MethodGet, http.MethodPatch} {
		rec := api.serve(method, "/messages/x", "Origin", corsOrigin)
		if rec.Code != http.StatusTooManyRequests {
			t.Fatalf("%s past the limit = %d %s, want 429", method, rec.Code, rec.Body)
		}
		if got := rec.Header().Get("Access-Control-Allow-Origin"); got != corsOrigin {
			t.Errorf("429 to %s of an allowed origin: Access-Control-Allow-Origin %q, want %q", method, got, corsOrigin)
		}
		expose := strings.Split(rec.Header().Get("Access-Control-Expose-Headers"), ", ")
		for _, h := range []string{"X-Ratelimit-Limit", "X-Ratelimit-Remaining", "X-Ratelimit-Reset", "Retry-After",
			"X-Request-Id", "Location", "Etag", "Www-Authenticate"} {
			if !containsFold(expose, h) {
				t.Errorf("429 to %s: Access-Control-Expose-Headers %q lacks %s", method, expose, h)
			}
		}
		if rec.Header().Get("Retry-After") == "" || rec.Header().Get("X-Ratelimit-Remaining") != "0" {
			t.Errorf("429 to %s without Retry-After or X-RateLimit-Remaining 0: %v", method, rec.Header())
		}
	}
	// The limited address still gets its preflights answered.
	rec := api.preflight(http.MethodPost, "/messages")
	if rec.Code != http.StatusOK || rec.Header().Get("Access-Control-Allow-Origin") != corsOrigin {
		t.Errorf("preflight of a limited address = %d %v, want the preflight's 200 with CORS headers", rec.Code, rec.Header())
	}
}

func containsFold(list []string, s string) bool {
	for _, e := range list {
		if strings.EqualFold(strings.TrimSpace(e), s) {
			return true
		}
	}
	return false
}
