// Package apitest checks exchanges with the API against its OpenAPI
// document, the one the server serves (messageapi.OpenAPI). The handler
// tests of cmd/api and the end-to-end tests pass every request they make
// and every response they get through a Checker, so a response the
// document does not describe fails the test that got it.
package apitest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"messageapi"
)

// Checker checks exchanges against the OpenAPI document.
type Checker struct {
	doc    *openapi3.T
	router routers.Router
}

// NewChecker loads and validates the document built into the binary. It
// closes the document's response objects first (see closeObjects), so
// the server cannot add a field the document does not describe.
func NewChecker() (*Checker, error) {
	doc, err := Load()
	if err != nil {
		return nil, err
	}
	closeObjects(doc)
	// An event stream is text; checkEvents checks its events.
	openapi3filter.RegisterBodyDecoder("text/event-stream", openapi3filter.PlainBodyDecoder)
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("route openapi.yaml: %w", err)
	}
	return &Checker{doc: doc, router: router}, nil
}

// Load reads the document built into the binary and validates it as
// OpenAPI, its examples included.
func Load() (*openapi3.T, error) {
	return LoadData(messageapi.OpenAPI())
}

// LoadData reads an OpenAPI document, YAML or JSON, and validates it.
func LoadData(data []byte) (*openapi3.T, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(data)
	if err != nil {
		return nil, fmt.Errorf("load openapi.yaml: %w", err)
	}
	if err := doc.Validate(loader.Context, openapi3.EnableSchemaFormatValidation(), openapi3.EnableMultiError()); err != nil {
		return nil, fmt.Errorf("openapi.yaml is not valid OpenAPI: %w", err)
	}
	return doc, nil
}

// Check reports how an exchange departs from the document, or nil when it
// matches. req is the request as sent and reqBody its body (req.Body is
// not read); resp is the response and respBody its body.
//
// The request is checked too. A request the document allows may still be
// refused (rules such as "not only white space" are the server's to
// check), but a request the document forbids must be refused with a
// documented 4xx: a server that accepts it is laxer than its contract.
func (c *Checker) Check(req *http.Request, reqBody []byte, resp *http.Response, respBody []byte) error {
	if err := c.check(req, reqBody, resp, respBody); err != nil {
		return fmt.Errorf("%s %s answered %d, which openapi.yaml does not describe: %w",
			req.Method, req.URL.RequestURI(), resp.StatusCode, err)
	}
	return nil
}

func (c *Checker) check(req *http.Request, reqBody []byte, resp *http.Response, respBody []byte) error {
	ctx := context.Background()
	// openapi3filter reads the body from the request, and skips HEAD: HEAD
	// is checked as the GET it mirrors, without the body.
	sent := req.Clone(ctx)
	sent.Body = http.NoBody
	if len(reqBody) > 0 {
		sent.Body = readCloser{bytes.NewReader(reqBody)}
		if sent.Header.Get("Content-Type") == "" {
			sent.Header.Set("Content-Type", "application/json") // as documented
		}
	}
	head := req.Method == http.MethodHead
	if head {
		sent.Method = http.MethodGet
		if len(respBody) > 0 {
			return errors.New("HEAD answered with a body")
		}
	}
	route, params, err := c.router.FindRoute(sent)
	preflight := req.Method == http.MethodOptions && req.Header.Get("Origin") != "" && req.Header.Get("Access-Control-Request-Method") != ""
	switch {
	case preflight && resp.StatusCode == http.StatusOK:
		// Answered by the CORS layer, before routing.
		return c.checkUnrouted(sent, resp, respBody, head, http.StatusOK, "Preflight")
	case errors.Is(err, routers.ErrPathNotFound):
		return c.checkUnrouted(sent, resp, respBody, head, http.StatusNotFound, "NotFound")
	case errors.Is(err, routers.ErrMethodNotAllowed) && req.Method == http.MethodOptions:
		if err := c.checkAllow(sent, resp); err != nil {
			return err
		}
		return c.checkUnrouted(sent, resp, respBody, head, http.StatusNoContent, "Options")
	case errors.Is(err, routers.ErrMethodNotAllowed):
		if resp.StatusCode == http.StatusMethodNotAllowed {
			if err := c.checkAllow(sent, resp); err != nil {
				return err
			}
		}
		return c.checkUnrouted(sent, resp, respBody, head, http.StatusMethodNotAllowed, "MethodNotAllowed")
	case err != nil:
		return fmt.Errorf("find the operation: %w", err)
	}
	// The router hands path parameters over as they are in the URL;
	// the server, and so the document, sees them decoded.
	for k, v := range params {
		if decoded, err := url.PathUnescape(v); err == nil {
			params[k] = decoded
		}
	}
	in := &openapi3filter.RequestValidationInput{Request: sent, PathParams: params, Route: route, Options: c.options()}
	reqErr := openapi3filter.ValidateRequest(ctx, in)
	what := route.Operation.OperationID
	if reqErr != nil && resp.StatusCode < 400 {
		return fmt.Errorf("%s: the request breaks the document, yet the server accepted it: %s", what, describe(reqErr))
	}
	if err := c.checkResponse(in, resp, respBody, head); err != nil {
		if reqErr != nil {
			return fmt.Errorf("%s: %w (the request breaks the document: %s)", what, err, describe(reqErr))
		}
		return fmt.Errorf("%s: %w", what, err)
	}
	if resp.Header.Get("Content-Type") == "text/event-stream" && !head {
		if err := c.checkEvents(respBody); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
	return nil
}

// checkEvents checks a whole event stream: every event has an id and a
// documented type, ready and reset carry {}, and every other event's data
// is an Event of its type.
func (c *Checker) checkEvents(body []byte) error {
	schema := c.doc.Components.Schemas["Event"]
	if schema == nil {
		return errors.New("the document has no Event schema")
	}
	for _, block := range strings.Split(strings.TrimSpace(string(body)), "\n\n") {
		fields := map[string]string{}
		for _, line := range strings.Split(block, "\n") {
			if strings.HasPrefix(line, ":") {
				continue // a comment: a heartbeat
			}
			k, v, _ := strings.Cut(line, ":")
			fields[k] = strings.TrimPrefix(v, " ")
		}
		typ, data := fields["event"], fields["data"]
		switch {
		case typ == "" && fields["retry"] != "":
			continue
		case typ == "" || fields["id"] == "":
			return fmt.Errorf("event without a type or an id: %q", block)
		case typ == "ready" || typ == "reset":
			if data != "{}" {
				return fmt.Errorf("%s event with data %s", typ, data)
			}
			continue
		}
		var v any
		if err := json.Unmarshal([]byte(data), &v); err != nil {
			return fmt.Errorf("%s event %s: data is not JSON: %w", typ, fields["id"], err)
		}
		if err := schema.Value.VisitJSON(v); err != nil {
			return fmt.Errorf("%s event %s: data is not an Event: %s", typ, fields["id"], describe(err))
		}
		if m, _ := v.(map[string]any); m["type"] != typ {
			return fmt.Errorf("%s event %s: data of type %v", typ, fields["id"], m["type"])
		}
	}
	return nil
}

// checkUnrouted checks the answer to a request no operation takes: the
// documented response named name with status, or the answers any request
// may get before it is routed (429, 500).
func (c *Checker) checkUnrouted(req *http.Request, resp *http.Response, respBody []byte, head bool, status int, name string) error {
	op := openapi3.NewOperation()
	op.Responses = openapi3.NewResponses()
	for st, name := range map[int]string{status: name, http.StatusTooManyRequests: "RateLimited", http.StatusInternalServerError: "Internal"} {
		ref := c.doc.Components.Responses[name]
		if ref == nil {
			return fmt.Errorf("the document has no response %s", name)
		}
		op.Responses.Set(strconv.Itoa(st), ref)
	}
	route := &routers.Route{Spec: c.doc, Path: req.URL.Path, Method: req.Method, Operation: op}
	in := &openapi3filter.RequestValidationInput{Request: req, Route: route, Options: c.options()}
	if err := c.checkResponse(in, resp, respBody, head); err != nil {
		return fmt.Errorf("%s for a request no operation takes: %w", name, err)
	}
	return nil
}

// checkAllow checks that an Allow header names the methods the document
// lists for the request's path, with HEAD beside GET, and OPTIONS.
func (c *Checker) checkAllow(req *http.Request, resp *http.Response) error {
	want := []string{http.MethodOptions}
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		probe := req.Clone(context.Background())
		probe.Method = m
		if _, _, err := c.router.FindRoute(probe); err == nil {
			want = append(want, m)
			if m == http.MethodGet {
				want = append(want, http.MethodHead)
			}
		}
	}
	var got []string
	for _, m := range strings.Split(resp.Header.Get("Allow"), ",") {
		got = append(got, strings.TrimSpace(m))
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		return fmt.Errorf("the Allow header is %q; the document lists %v", resp.Header.Get("Allow"), want)
	}
	return nil
}

// checkResponse checks the response against the operation of in; the
// body only unless noBody.
func (c *Checker) checkResponse(in *openapi3filter.RequestValidationInput, resp *http.Response, respBody []byte, noBody bool) error {
	documented := in.Route.Operation.Responses.Status(resp.StatusCode)
	if documented == nil {
		return fmt.Errorf("status %d is not documented", resp.StatusCode)
	}
	if len(documented.Value.Content) == 0 && len(respBody) > 0 {
		return fmt.Errorf("status %d is documented without a body, yet it has %d bytes", resp.StatusCode, len(respBody))
	}
	status := resp.StatusCode
	if status == http.StatusNotModified {
		// openapi3filter passes every 304; check its headers as those of
		// a response it does look at.
		op := &openapi3.Operation{Responses: openapi3.NewResponses(openapi3.WithStatus(http.StatusOK, documented))}
		route := *in.Route
		route.Operation = op
		in = &openapi3filter.RequestValidationInput{Request: in.Request, PathParams: in.PathParams, Route: &route, Options: in.Options}
		status, noBody = http.StatusOK, true
	}
	opts := *in.Options
	opts.ExcludeResponseBody = noBody
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: status, Header: resp.Header, Options: &opts}
	out.SetBodyBytes(respBody)
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		return errors.New(describe(err))
	}
	return nil
}

func (c *Checker) options() *openapi3filter.Options {
	opts := &openapi3filter.Options{
		IncludeResponseStatus: true,
		MultiError:            true,
		// Tokens are the server's to verify; the document says which
		// schemes an operation takes, and the checker takes them all.
		AuthenticationFunc: openapi3filter.NoopAuthenticationFunc,
		SchemaValidationOptions: []openapi3.SchemaValidationOption{
			openapi3.WithStringFormatValidator("uuid", openapi3.NewRegexpFormatValidator(openapi3.FormatOfStringForUUIDOfRFC9562)),
		},
	}
	opts.WithCustomSchemaErrorFunc(func(err *openapi3.SchemaError) string {
		// The JSON Schema 2020-12 validator says where; the older one
		// does not. Neither needs the schema and value dumps of Error().
		if rest, ok := strings.CutPrefix(err.Reason, `error at "`); ok {
			if _, where, ok := strings.Cut(rest, `": `); ok {
				return where
			}
		}
		return fmt.Sprintf("at /%s: %s", strings.Join(err.JSONPointer(), "/"), err.Reason)
	})
	return opts
}

// describe flattens a validation error into one line per problem.
func describe(err error) string {
	var multi openapi3.MultiError
	if errors.As(err, &multi) {
		parts := make([]string, len(multi))
		for i, e := range multi {
			parts[i] = describe(e)
		}
		return strings.Join(parts, "; ")
	}
	return err.Error()
}

// closeObjects forbids, in every object schema that lists its properties
// and says nothing of others, any other property, and holds each value
// with an x-codes list to that list. The published document leaves both
// open, so that clients are ready for new fields and error codes (a
// generated client that enforced an enum would fail to decode a new
// code); the tests close them, so the server cannot send a field or a
// code before the document describes it.
func closeObjects(doc *openapi3.T) {
	seen := map[*openapi3.Schema]bool{}
	var walk func(*openapi3.SchemaRef)
	walk = func(ref *openapi3.SchemaRef) {
		if ref == nil || ref.Value == nil || seen[ref.Value] {
			return
		}
		s := ref.Value
		seen[s] = true
		if s.Type.Is(openapi3.TypeObject) && len(s.Properties) > 0 &&
			s.AdditionalProperties.Has == nil && s.AdditionalProperties.Schema == nil {
			s.AdditionalProperties.Has = openapi3.Ptr(false)
		}
		if codes, ok := s.Extensions["x-codes"].([]any); ok {
			s.Enum = codes
		}
		for _, p := range s.Properties {
			walk(p)
		}
		walk(s.Items)
		walk(s.AdditionalProperties.Schema)
		for _, list := range [][]*openapi3.SchemaRef{s.AllOf, s.AnyOf, s.OneOf} {
			for _, sub := range list {
				walk(sub)
			}
		}
	}
	for _, ref := range doc.Components.Schemas {
		walk(ref)
	}
	responses := []*openapi3.ResponseRef{}
	for _, ref := range doc.Components.Responses {
		responses = append(responses, ref)
	}
	for _, item := range doc.Paths.Map() {
		for _, op := range item.Operations() {
			for _, ref := range op.Responses.Map() {
				responses = append(responses, ref)
			}
		}
	}
	for _, ref := range responses {
		if ref.Value == nil {
			continue
		}
		for _, mt := range ref.Value.Content {
			walk(mt.Schema)
		}
	}
}

// readCloser gives a reader the Close that a request body needs.
type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }

// shared is the checker of the document, made once per test binary.
var shared = sync.OnceValues(NewChecker)

// Exchange sends req, whose body is reqBody, with client, reads the whole
// response, and checks the exchange against the document. It fails tb at
// once when the exchange cannot be made, and marks it failed when the
// exchange departs from the document.
func Exchange(tb testing.TB, client *http.Client, req *http.Request, reqBody []byte) (*http.Response, []byte) {
	tb.Helper()
	c, err := shared()
	if err != nil {
		tb.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	if err := c.Check(req, reqBody, resp, body); err != nil {
		tb.Error(err)
	}
	return resp, body
}
