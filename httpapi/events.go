package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"

	"messageapi"
	"messageapi/sse"
)

// Bounds of GET /events.
const (
	maxEventFilters  = 100
	minEventDuration = time.Second
	maxEventDuration = time.Hour
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
		if len(ids) > maxEventFilters {
			params.fields["message_id"] = "may be given at most " + strconv.Itoa(maxEventFilters) + " times"
		}
		for _, id := range ids {
			u, err := uuid.Parse(id)
			if err != nil || !messageapi.ValidUUIDBraces(id) {
				params.fields["message_id"] = messageapi.UUIDRule
				break
			}
			req.Filter[u.String()] = true
		}
	}
	if s := params.str("last_event_id"); s != nil {
		req.LastID = *s
	}
	if h := r.Header.Get("Last-Event-ID"); h != "" {
		req.LastID = h // a reconnecting EventSource's position is newer
	}
	if req.LastID != "" {
		if _, ok := messageapi.ParseFeedPosition(req.LastID); !ok || len(req.LastID) > 41 {
			params.fields["last_event_id"] = "must be the id of an event this stream sent"
		}
	}
	if s := params.str("duration"); s != nil {
		d, err := time.ParseDuration(*s)
		if err != nil || d < minEventDuration || d > maxEventDuration {
			params.fields["duration"] = "must be a duration from " + minEventDuration.String() + " to " + maxEventDuration.String() + ", like 30s"
		}
		req.Duration = d
	}
	return req, params.err()
}
