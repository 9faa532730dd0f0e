package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"

	"messageapi"
)

// TestErrorStatuses checks the one table from error codes to statuses,
// and that only the messages of *messageapi.Error reach the client.
func TestErrorStatuses(t *testing.T) {
	tests := []struct {
		err    error
		status int
		body   string
	}{
		{messageapi.Errorf(messageapi.EINVALID, "bad"), 400, `{"error":"bad","code":"invalid_argument"}`},
		{messageapi.InvalidFields(map[string]string{"text": "is required"}), 400, `{"error":"request is invalid","code":"invalid_argument","fields":{"text":"is required"}}`},
		{messageapi.Errorf(messageapi.EUNAUTHENTICATED, "who?"), 401, `{"error":"who?","code":"unauthenticated"}`},
		{messageapi.Errorf(messageapi.EPERMISSION, "not yours"), 403, `{"error":"not yours","code":"permission_denied"}`},
		{messageapi.Errorf(messageapi.ENOTFOUND, "gone"), 404, `{"error":"gone","code":"not_found"}`},
		{messageapi.Errorf(messageapi.ECONFLICT, "taken"), 409, `{"error":"taken","code":"conflict"}`},
		{messageapi.Errorf(messageapi.ETOOLARGE, "big"), 413, `{"error":"big","code":"payload_too_large"}`},
		{messageapi.Errorf(messageapi.EMEDIATYPE, "json"), 415, `{"error":"json","code":"unsupported_media_type"}`},
		{messageapi.Errorf(messageapi.ERATELIMITED, "slow"), 429, `{"error":"slow","code":"rate_limited"}`},
		{messageapi.Unavailable("database", errors.New("dial tcp 10.0.0.1:5432: refused")), 503, `{"error":"database is temporarily unavailable","code":"unavailable"}`},
		{errors.New("pq: relation does not exist"), 500, `{"error":"internal error","code":"internal"}`},
	}
	for _, tt := range tests {
		rec := httptest.NewRecorder()
		writeError(rec, httptest.NewRequest(http.MethodGet, "/", nil), tt.err)
		if rec.Code != tt.status || rec.Body.String() != tt.body+"\n" {
			t.Errorf("%v: %d %s; want %d %s", tt.err, rec.Code, rec.Body, tt.status, tt.body)
		}
		if (tt.status == 503) != (rec.Header().Get("Retry-After") != "") {
			t.Errorf("%v: Retry-After %q", tt.err, rec.Header().Get("Retry-After"))
		}
		if (tt.status == 401) != (rec.Header().Get("WWW-Authenticate") == `Bearer realm="message-api"`) {
			t.Errorf("%v: WWW-Authenticate %q", tt.err, rec.Header().Get("WWW-Authenticate"))
		}
	}
}

// fieldsBody is a request body with the fields of a reaction post.
type fieldsBody struct {
	Type   string `json:"type"`
	UserID string `json:"user_id"`
	Score  *int   `json:"score"`
	Unique bool   `json:"enforce_unique"`
}

func TestCheckFieldNames(t *testing.T) {
	for body, want := range map[string]string{
		`{"type":"like","user_id":"bob"}`:                               "",
		` { "type" : "like" , "score" : 5 , "enforce_unique" : true } `: "",
		`{}`:                                 "",
		`{"type":"x","Type":"y"}`:            "Type: is not a known field",
		`{"type":"x","extra":{"a":[1,"}"]}}`: "extra: is not a known field",
		`{"type":"x","type":"y"}`:            "type: is given more than once",
		`{"user_id":"a\"b","type":"x","score":1,"type":2}`: "type: is given more than once",
		`{"typ\u0065":"like","typ\u0065":"x"}`:             "type: is given more than once", // by the tokenizer
		`[1]`:                                              "",                              // left to the decoder
		`{"type":}`:                                        "",                              // the decoder's syntax error
	} {
		err := checkFieldNames([]byte(body), &fieldsBody{})
		got := ""
		var e *messageapi.Error
		if errors.As(err, &e) {
			for k, v := range e.Fields {
				got = k + ": " + v
			}
		}
		if got != want {
			t.Errorf("%s: %q, want %q", body, got, want)
		}
	}
}

// FuzzCheckFieldNames: on every valid JSON body, the scan gives the
// tokenizer's verdict.
func FuzzCheckFieldNames(f *testing.F) {
	for _, s := range []string{`{"type":"like","user_id":"bob"}`, `{"a":[{"b":"}"}],"type":1}`, `{"type":"\\"","type":2}`,
		`{"score":1e5,"x":null}`, ` {} `, `{"user_id" : "\u00e9"}`} {
		f.Add([]byte(s))
	}
	known := knownFields(reflect.TypeOf(fieldsBody{}))
	f.Fuzz(func(t *testing.T, body []byte) {
		if !json.Valid(body) {
			return
		}
		fast, slow := checkFieldNames(body, &fieldsBody{}), checkFieldTokens(body, known)
		if fmt.Sprint(fast) != fmt.Sprint(slow) {
			t.Errorf("%q: scan %v, tokenizer %v", body, fast, slow)
		}
	})
}

func BenchmarkCheckFieldNames(b *testing.B) {
	body := []byte(`{"type":"like","user_id":"lt-user-42","score":5}`)
	for b.Loop() {
		if err := checkFieldNames(body, &fieldsBody{}); err != nil {
			b.Fatal(err)
		}
	}
}
