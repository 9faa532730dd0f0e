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

// parseEventsRequest reads GET /events: message_id (repeatable), the
// position to resume after (the Last-Event-ID header, or last_event_id
// for clients that cannot set it), and duration.
func parseEventsRequest(r *http.Request) (sse.Request, error) {
	params, err := queryParams(r, "message_id", "last_event_id", "duration", "access_token")
	if err != nil {
		return sse.Request{}, err
	}
	var req sse.Request
	if ids := params.list("message_id"); len(ids) > 0 {
		req.Filter = make(map[string]bool, len(ids))
		if len(ids) > messageapi.MaxEventFilters {
			params.fields["message_id"] = messageapi.EventFiltersRule
		}
		for _, id := range ids {
			if ok, why := validation.Valid(id, "uuid"); !ok {
				params.fields["message_id"] = why
				break
			}
			req.Filter[validation.CanonicalUUID(id)] = true
		}
	}
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
