package httpapi

import (
	"net/http"
	"time"

	"messageapi"
	"messageapi/sse"
	"messageapi/validation"
)

// handleEvents streams live events as Server-Sent Events (see sse.Hub.Serve).
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	req, err := parseEventsRequest(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	req.Log = requestLogger(r.Context())
	if err := s.Events.Serve(w, r, req); err != nil {
		writeError(w, r, err)
	}
}

// parseEventsRequest reads GET /events: message_id and channel_id (each
// repeatable), the position to resume after (the Last-Event-ID header, or
// last_event_id for clients that cannot set it), and duration.
func parseEventsRequest(r *http.Request) (sse.Request, error) {
	params, err := queryParams(r, "message_id", "channel_id", "last_event_id", "duration", "access_token")
	if err != nil {
		return sse.Request{}, err
	}
	var req sse.Request
	req.Filter.Messages = params.filter("message_id", "uuid", validation.CanonicalUUID)
	req.Filter.Channels = params.filter("channel_id", "channel_id", func(s string) string { return s })
	if s := params.str("last_event_id"); s != nil {
		req.LastID = *s
	}
	if h := r.Header.Get("Last-Event-ID"); h != "" {
		req.LastID = h // a reconnecting EventSource's position is newer
	}
	if req.LastID != "" {
		if ok, why := validation.Valid(req.LastID, "feed_position"); !ok {
			params.fields["last_event_id"] = why
		}
	}
	if s := params.str("duration"); s != nil {
		if ok, why := validation.Valid(*s, "event_duration"); !ok {
			params.fields["duration"] = why
		}
		req.Duration, _ = time.ParseDuration(*s)
	}
	return req, params.err()
}

// filter reads the repeatable parameter name, each value valid by rule,
// as a set of its values in canonical form; nil when it is absent. A bad
// value, or too many, is recorded as the parameter's error.
func (p *params) filter(name, rule string, canonical func(string) string) map[string]bool {
	values := p.list(name)
	if len(values) == 0 {
		return nil
	}
	if len(values) > messageapi.MaxEventFilters {
		p.fields[name] = messageapi.EventFiltersRule
	}
	set := make(map[string]bool, len(values))
	for _, v := range values {
		if ok, why := validation.Valid(v, rule); !ok {
			p.fields[name] = why
			break
		}
		set[canonical(v)] = true
	}
	return set
}
