package main

import (
	"bytes"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata/error_bodies.golden from the answers")

// TestErrorBodies holds the answers to bad requests of every route, body
// and all, to a golden file: which fields a request names, and what it
// says of each, change only on purpose.
func TestErrorBodies(t *testing.T) {
	t.Parallel()
	api := newTestAPI(t)
	const unknown = "0192f0a4-8a4b-7cc1-9e8a-5a3b1c2d3e4f"
	many := strings.Repeat("message_id="+unknown+"&", 101)
	requests := []struct{ method, path, body string }{
		{"POST", "/messages", `{}`},
		{"POST", "/messages", `{"text":"","user_id":""}`},
		{"POST", "/messages", `{"id":"x","text":" ","user_id":"a b"}`},
		{"POST", "/messages", `{"id":"0192f0a4-8a4b-4cc1-9e8a-5a3b1c2d3e4f","text":"hi","user_id":"u"}`},
		{"POST", "/messages", `{"id":"{0192f0a4-8a4b-7cc1-9e8a-5a3b1c2d3e4f","text":"\u0000","user_id":"` + strings.Repeat("u", 200) + `"}`},
		{"POST", "/messages/x/reactions", `{"type":"Like","user_id":"","score":0}`},
		{"POST", "/messages/" + unknown + "/reactions", `{"type":"","user_id":"u","score":1000}`},
		{"POST", "/messages/" + unknown + "/reactions", `{"user_id":"u","score":-1000}`},
		{"DELETE", "/messages/x/reactions/BAD?user_id=", ""},
		{"DELETE", "/messages/" + unknown + "/reactions/like", ""},
		{"GET", "/messages?limit=0&user_id=a%20b", ""},
		{"GET", "/messages?limit=x&page=y", ""},
		{"GET", "/messages?page=0", ""},
		{"GET", "/messages?page=99999", ""},
		{"GET", "/messages?page=99999&limit=0", ""},
		{"GET", "/messages?around=x", ""},
		{"GET", "/messages?around=x&page=0", ""},
		{"GET", "/messages?page=1&cursor=abc", ""},
		{"GET", "/messages?cursor=abc&user_id=", ""},
		{"GET", "/messages/x?user_id=", ""},
		{"GET", "/messages/" + unknown + "/reactions?limit=0&type=BAD&user_id=&cursor=zz", ""},
		{"GET", "/messages/x/reactions?type=", ""},
		{"GET", "/events?message_id=x&last_event_id=abc&duration=5h", ""},
		{"GET", "/events?" + many + "duration=1s", ""},
		{"GET", "/events?duration=500ms&last_event_id=" + strings.Repeat("1", 42), ""},
	}
	var got bytes.Buffer
	for _, req := range requests {
		header := http.Header{}
		if req.body != "" {
			header.Set("Content-Type", "application/json")
		}
		r := api.send(req.method, req.path, header, strings.NewReader(req.body))
		path := req.path
		if len(path) > 120 {
			path = path[:120] + "..."
		}
		fmt.Fprintf(&got, "%s %s %s\n%d %s\n", req.method, path, req.body, r.status, bytes.TrimSpace(r.body))
	}
	const golden = "testdata/error_bodies.golden"
	if *updateGolden {
		if err := os.WriteFile(golden, got.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Errorf("the answers to bad requests changed; got:\n%s\nwant:\n%s", got.Bytes(), want)
	}
}
