// Package client is a Go client of the Message API. client.gen.go is
// generated from openapi.yaml by oapi-codegen (go generate ./client);
// this file adds what the generated code leaves awkward: a constructor,
// bearer tokens and the error body.
//
//	c, err := client.New("http://localhost:8080", client.WithBearerToken(token))
//	page, err := c.ListMessagesWithResponse(ctx, &client.ListMessagesParams{UserId: client.Ptr("alice")})
//	if err == nil && page.JSON200 != nil {
//		fmt.Println(len(page.JSON200.Messages))
//	}
package client

import (
	"context"
	"encoding/json"
	"net/http"
)

// New returns a client of the API at server (for example
// "http://localhost:8080") whose methods decode each answer by its
// status: JSON200, JSON201, JSON400 and so on.
func New(server string, opts ...ClientOption) (*ClientWithResponses, error) {
	return NewClientWithResponses(server, opts...)
}

// WithBearerToken sends token as the bearer token of every request.
func WithBearerToken(token string) ClientOption {
	return WithRequestEditorFn(Bearer(token))
}

// Bearer sends token as the bearer token of one request, given as the
// last argument of a call.
func Bearer(token string) RequestEditorFn {
	return func(_ context.Context, req *http.Request) error {
		req.Header.Set("Authorization", "Bearer "+token)
		return nil
	}
}

// ErrorOf decodes the error body of an answer that is not a success
// (any of the Body fields of the generated responses). It returns false
// when body is not the API's error object.
func ErrorOf(body []byte) (Error, bool) {
	var e Error
	if err := json.Unmarshal(body, &e); err != nil || e.Code == "" {
		return Error{}, false
	}
	return e, true
}

// Ptr returns a pointer to v, for the optional fields of parameters and
// requests.
func Ptr[T any](v T) *T { return &v }
