package httpapi

import (
	"errors"
	"net/http"
	"net/http/httptest"
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
