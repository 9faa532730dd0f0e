package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"

	"messageapi"
	"messageapi/auth"
)

// maxBodyBytes caps a request body; larger bodies get 413.
const maxBodyBytes = 64 << 10

// statusOf maps each error code to its HTTP status. It is the only place
// that knows both.
var statusOf = map[string]int{
	messageapi.EINVALID:         http.StatusBadRequest,
	messageapi.EUNAUTHENTICATED: http.StatusUnauthorized,
	messageapi.EPERMISSION:      http.StatusForbidden,
	messageapi.ENOTFOUND:        http.StatusNotFound,
	messageapi.EMETHOD:          http.StatusMethodNotAllowed,
	messageapi.ECONFLICT:        http.StatusConflict,
	messageapi.ELIMIT:           http.StatusUnprocessableEntity,
	messageapi.ETOOLARGE:        http.StatusRequestEntityTooLarge,
	messageapi.EMEDIATYPE:       http.StatusUnsupportedMediaType,
	messageapi.ERATELIMITED:     http.StatusTooManyRequests,
	messageapi.EUNAVAILABLE:     http.StatusServiceUnavailable,
	messageapi.EINTERNAL:        http.StatusInternalServerError,
}

// errorBody is the body of every error response.
type errorBody struct {
	Error  string            `json:"error"`
	Code   string            `json:"code"`
	Fields map[string]string `json:"fields,omitempty"`
}

// writeJSON writes v with status. It encodes before writing the header, so
// an encoding failure can still become a 500.
func writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		writeError(w, r, fmt.Errorf("encode response: %w", err))
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// writeBody writes a 200 of JSON this service encoded. With its length
// known, the response goes out whole rather than in chunks, in fewer
// writes.
func writeBody(w http.ResponseWriter, body []byte) {
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

// writeError writes err as the error body with its status. Internal errors
// and outages are logged with the request id, and the client sees only the
// error's public message, never driver text.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	ctx := r.Context()
	log := requestLogger(ctx)
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		// The client went away; nobody reads this. 499 marks it in the
		// access log, as nginx does.
		log.DebugContext(ctx, "client closed request", "err", err)
		w.WriteHeader(499)
		return
	}
	code := messageapi.ErrorCode(err)
	status, ok := statusOf[code]
	if !ok {
		status = http.StatusInternalServerError
	}
	switch code {
	case messageapi.EINTERNAL:
		log.ErrorContext(ctx, "internal error", "err", err)
	case messageapi.EUNAVAILABLE:
		log.WarnContext(ctx, "dependency unavailable", "err", err)
		w.Header().Set("Retry-After", "1")
	case messageapi.EUNAUTHENTICATED:
		if w.Header().Get("WWW-Authenticate") == "" { // every 401 names the scheme (RFC 9110 §15.5.2)
			w.Header().Set("WWW-Authenticate", auth.ErrNoToken.Challenge())
		}
	}
	body := errorBody{Error: messageapi.ErrorMessage(err), Code: code, Fields: messageapi.ErrorFields(err)}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

func invalid(format string, args ...any) error {
	return messageapi.Errorf(messageapi.EINVALID, format, args...)
}

// decodeJSON reads a request body holding exactly one JSON object into dst.
// Every way a body can be wrong is a 4xx that says what is wrong: a
// Content-Type that is not JSON in UTF-8 (415), a body over maxBodyBytes
// (413), malformed JSON, a value of the wrong type, a field dst does not
// have (names match exactly, as documented, not in any case), a field
// given twice, or data after the object (400).
func decodeJSON(w http.ResponseWriter, r *http.Request, dst any) error {
	if err := checkContentType(r.Header.Values("Content-Type")); err != nil {
		return err
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return decodeError(err)
		}
		return invalid("request body could not be read")
	}
	if err := checkFieldNames(body, dst); err != nil {
		return err
	}
	// checkFieldNames has refused unknown fields already.
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(dst); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return invalid("request body must hold one JSON object and nothing after it")
	}
	return nil
}

// checkContentType accepts no Content-Type, or exactly one JSON media type
// whose charset, when given, is UTF-8.
func checkContentType(values []string) error {
	switch len(values) {
	case 0:
		return nil
	case 1:
		mt, params, err := mime.ParseMediaType(values[0])
		if err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json")) {
			if cs, ok := params["charset"]; !ok || strings.EqualFold(cs, "utf-8") {
				return nil
			}
		}
	}
	return messageapi.Errorf(messageapi.EMEDIATYPE, "Content-Type must be application/json (UTF-8)")
}

// checkFieldNames rejects a top-level field that dst does not declare with
// exactly that name, and a field given twice. encoding/json would match
// names in any case and let the last duplicate win. A body that is not an
// object is left to the decoder to report.
//
// Every write runs it, so it first scans the body itself (topLevelNames);
// a body that scan cannot follow (an escape in a name, broken JSON) goes
// through encoding/json's tokenizer, which decides.
func checkFieldNames(body []byte, dst any) error {
	known := knownFields(reflect.TypeOf(dst).Elem())
	if names, ok := topLevelNames(body); ok {
		var seen uint64 // the fields of a body: its first 64 names
		for i, name := range names {
			bit, found := known[string(name)]
			switch {
			case !found:
				return messageapi.InvalidFields(map[string]string{string(name): "is not a known field"})
			case i < 64 && seen&(1<<bit) != 0, i >= 64:
				if duplicateName(names[:i], name) {
					return messageapi.InvalidFields(map[string]string{string(name): "is given more than once"})
				}
			}
			seen |= 1 << bit
		}
		return nil
	}
	return checkFieldTokens(body, known)
}

// knownByType caches, per struct type, the JSON names of its fields, each
// with a bit of its own (types have far fewer than 64 fields).
var knownByType sync.Map // reflect.Type -> map[string]uint

func knownFields(t reflect.Type) map[string]uint {
	if k, ok := knownByType.Load(t); ok {
		return k.(map[string]uint)
	}
	known := map[string]uint{}
	for i := range t.NumField() {
		if name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ","); name != "" && name != "-" {
			known[name] = uint(len(known) % 64)
		}
	}
	knownByType.Store(t, known)
	return known
}

func duplicateName(before [][]byte, name []byte) bool {
	for _, b := range before {
		if bytes.Equal(b, name) {
			return true
		}
	}
	return false
}

// checkFieldTokens is checkFieldNames by encoding/json's tokenizer, for
// the bodies topLevelNames cannot follow.
func checkFieldTokens(body []byte, known map[string]uint) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil
		}
		name, _ := tok.(string)
		_, isKnown := known[name]
		switch {
		case !isKnown:
			return messageapi.InvalidFields(map[string]string{name: "is not a known field"})
		case seen[name]:
			return messageapi.InvalidFields(map[string]string{name: "is given more than once"})
		}
		seen[name] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return nil
		}
	}
	return nil
}

// topLevelNames returns the names of the members of body, a JSON object,
// in order, as they are written, skipping their values. ok is false when
// body is not an object this scan can follow: a name holding an escape,
// or anything but well-formed structure (the values themselves are only
// skipped, not checked; the decoder checks them).
func topLevelNames(body []byte) (names [][]byte, ok bool) {
	i := skipSpace(body, 0)
	if i >= len(body) || body[i] != '{' {
		return nil, false
	}
	i = skipSpace(body, i+1)
	if i < len(body) && body[i] == '}' {
		return nil, skipSpace(body, i+1) == len(body)
	}
	for {
		if i >= len(body) || body[i] != '"' {
			return nil, false
		}
		end := bytes.IndexByte(body[i+1:], '"')
		if end < 0 {
			return nil, false
		}
		name := body[i+1 : i+1+end]
		if bytes.IndexByte(name, '\\') >= 0 {
			return nil, false
		}
		names = append(names, name)
		i = skipSpace(body, i+2+end)
		if i >= len(body) || body[i] != ':' {
			return nil, false
		}
		if i = skipValue(body, skipSpace(body, i+1)); i < 0 {
			return nil, false
		}
		i = skipSpace(body, i)
		switch {
		case i < len(body) && body[i] == ',':
			i = skipSpace(body, i+1)
		case i < len(body) && body[i] == '}':
			return names, skipSpace(body, i+1) == len(body)
		default:
			return nil, false
		}
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipValue returns the index after the JSON value that starts at b[i],
// or -1 when its brackets or strings do not close.
func skipValue(b []byte, i int) int {
	if i >= len(b) || b[i] == ',' || b[i] == '}' || b[i] == ']' || b[i] == ':' {
		return -1 // no value
	}
	depth := 0
	for i < len(b) {
		switch c := b[i]; c {
		case '"':
			for i++; i < len(b) && b[i] != '"'; i++ {
				if b[i] == '\\' {
					i++
				}
			}
			if i >= len(b) {
				return -1
			}
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return i // the end of the enclosing object
			}
			depth--
		case ',':
			if depth == 0 {
				return i
			}
		}
		i++
		if depth == 0 && i < len(b) && (b[i] == ',' || b[i] == '}') {
			return i
		}
	}
	if depth != 0 {
		return -1
	}
	return i
}

func decodeError(err error) error {
	var (
		tooLarge *http.MaxBytesError
		syntax   *json.SyntaxError
		typ      *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &tooLarge):
		return messageapi.Errorf(messageapi.ETOOLARGE, "request body must be at most %d bytes", maxBodyBytes)
	case errors.Is(err, io.EOF):
		return invalid("request body is empty; it must be a JSON object")
	case errors.As(err, &syntax):
		return invalid("request body is not valid JSON (at byte %d)", syntax.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return invalid("request body is not valid JSON (it ends too early)")
	case errors.As(err, &typ):
		if typ.Field == "" {
			return invalid("request body must be a JSON object")
		}
		reason := "must be a " + jsonKind(typ.Type.Kind().String())
		if typ.Field == "score" {
			reason = messageapi.ScoreRule
		}
		return messageapi.InvalidFields(map[string]string{typ.Field: reason})
	}
	return invalid("request body is not valid JSON")
}

// jsonKind names a Go kind the way a JSON client thinks of it.
func jsonKind(kind string) string {
	switch kind {
	case "string":
		return "string"
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		return "integer"
	case "float32", "float64":
		return "number"
	case "bool":
		return "boolean"
	case "slice", "array":
		return "array"
	}
	return "JSON object"
}
