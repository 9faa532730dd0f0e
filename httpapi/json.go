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
func checkFieldNames(body []byte, dst any) error {
	known := map[string]bool{}
	t := reflect.TypeOf(dst).Elem()
	for i := range t.NumField() {
		if name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ","); name != "" && name != "-" {
			known[name] = true
		}
	}
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
		switch {
		case !known[name]:
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
