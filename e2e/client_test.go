package e2e_test

import (
	"bytes"
	"io"
	"net/http"
	"reflect"
	"testing"

	"messageapi/client"
)

// checkedDoer sends the requests of the generated client with the
// stack's token for each, and fails every exchange that departs from
// openapi.yaml, so the main flows prove that the document, the server
// and a client generated from the document agree.
type checkedDoer struct{ s *stack }

func (d checkedDoer) Do(req *http.Request) (*http.Response, error) {
	var sent []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		sent = b
		req.Body = io.NopCloser(bytes.NewReader(b))
	}
	if d.s.tokens != nil {
		if token := d.s.tokens(req.Method, req.URL.RequestURI(), string(sent)); token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(got))
	c, err := contract()
	if err != nil {
		return nil, err
	}
	if err := c.Check(req, sent, resp, got); err != nil {
		return nil, err
	}
	return resp, nil
}

// client returns a generated client of the stack's API.
func (s *stack) client(t *testing.T) *client.ClientWithResponses {
	t.Helper()
	c, err := client.New(s.base, client.WithHTTPClient(checkedDoer{s}))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// answer is any response of the generated client.
type answer interface {
	StatusCode() int
}

// reply of the generated client: an answer and its error.
type clientReply[R answer] struct {
	r   R
	err error
}

// answered holds a call of the generated client for want.
func answered[R answer](r R, err error) clientReply[R] { return clientReply[R]{r, err} }

// want fails the test unless the call was answered with status, and
// returns the answer.
func (c clientReply[R]) want(t *testing.T, status int) R {
	t.Helper()
	if c.err != nil {
		t.Fatal(c.err)
	}
	if c.r.StatusCode() != status {
		t.Fatalf("answered %d, want %d: %s", c.r.StatusCode(), status, reflect.ValueOf(c.r).Elem().FieldByName("Body").Bytes())
	}
	return c.r
}
