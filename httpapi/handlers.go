package httpapi

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"messageapi"
	"messageapi/command"
	"messageapi/query"
)

func (s *Server) handleCreateMessage(w http.ResponseWriter, r *http.Request) {
	var cmd command.CreateMessage
	if err := decodeWrite(w, r, &cmd, &cmd.UserID); err != nil {
		writeError(w, r, err)
		return
	}
	v, created, err := s.createMessage(r, cmd)
	if err != nil {
		writeError(w, r, err)
		return
	}
	status := http.StatusOK // an idempotent retry: the stored message
	if created {
		status = http.StatusCreated
		w.Header().Set("Location", "/messages/"+v.ID)
	}
	writeJSON(w, r, status, v)
}

func (s *Server) createMessage(r *http.Request, cmd command.CreateMessage) (messageapi.MessageView, bool, error) {
	var err error
	if cmd.ChannelID, err = channelParam(r); err != nil {
		return messageapi.MessageView{}, false, err
	}
	return s.CreateMessage.Handle(r.Context(), cmd)
}

func (s *Server) handleListMessages(w http.ResponseWriter, r *http.Request) {
	params, err := queryParams(r, "limit", "page", "cursor", "around", "user_id")
	if err != nil {
		writeError(w, r, err)
		return
	}
	q := query.ListMessages{Cursor: params.str("cursor"), Around: params.str("around")}
	if q.ChannelID, err = channelParam(r); err != nil {
		writeError(w, r, err)
		return
	}
	q.Limit = params.int("limit", messageapi.LimitRule)
	q.Page = params.int("page", messageapi.PageRule)
	if err := params.err(); err != nil {
		writeError(w, r, err)
		return
	}
	if q.UserID, err = readerUser(r, params); err != nil {
		writeError(w, r, err)
		return
	}
	page, err := s.ListMessages.Handle(r.Context(), q)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeBody(w, page.JSON())
}

func (s *Server) handleGetMessage(w http.ResponseWriter, r *http.Request) {
	params, err := queryParams(r, "user_id")
	if err == nil {
		err = params.err()
	}
	if err != nil {
		writeError(w, r, err)
		return
	}
	q := query.GetMessage{ID: pathParam(r, "id")}
	if q.UserID, err = readerUser(r, params); err != nil {
		writeError(w, r, err)
		return
	}
	v, err := s.GetMessage.Handle(r.Context(), q)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, r, http.StatusOK, v)
}

func (s *Server) handleEditMessage(w http.ResponseWriter, r *http.Request) {
	var cmd command.EditMessage
	if err := decodeWrite(w, r, &cmd, &cmd.UserID); err != nil {
		writeError(w, r, err)
		return
	}
	cmd.ID, cmd.AnyAuthor = pathParam(r, "id"), actsForAnyUser(r)
	v, err := s.ChangeMessage.Edit(r.Context(), cmd)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, r, http.StatusOK, v)
}

func (s *Server) handleDeleteMessage(w http.ResponseWriter, r *http.Request) {
	params, err := queryParams(r, "user_id")
	if err != nil {
		writeError(w, r, err)
		return
	}
	cmd := command.DeleteMessage{ID: pathParam(r, "id"), AnyAuthor: actsForAnyUser(r)}
	if err = params.err(); err == nil {
		cmd.UserID, err = actingUser(r, deref(params.str("user_id")))
	}
	if err != nil {
		writeError(w, r, err)
		return
	}
	if err := s.ChangeMessage.Delete(r.Context(), cmd); err != nil {
		writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleAddReaction(w http.ResponseWriter, r *http.Request) {
	var cmd command.AddReaction
	if err := decodeWrite(w, r, &cmd, &cmd.UserID); err != nil {
		writeError(w, r, err)
		return
	}
	cmd.MessageID = pathParam(r, "id")
	reaction, created, err := s.AddReaction.Handle(r.Context(), cmd)
	if err != nil {
		writeError(w, r, err)
		return
	}
	status := http.StatusOK // an existing reaction, re-scored
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, r, status, reaction)
}

func (s *Server) handleRemoveReaction(w http.ResponseWriter, r *http.Request) {
	params, err := queryParams(r, "user_id")
	if err != nil {
		writeError(w, r, err)
		return
	}
	cmd := command.RemoveReaction{MessageID: pathParam(r, "id"), Type: pathParam(r, "type")}
	if err = params.err(); err == nil {
		cmd.UserID, err = actingUser(r, deref(params.str("user_id")))
	}
	if err != nil {
		writeError(w, r, err)
		return
	}
	if err := s.RemoveReaction.Handle(r.Context(), cmd); err != nil {
		writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleListReactions(w http.ResponseWriter, r *http.Request) {
	params, err := queryParams(r, "limit", "cursor", "type", "user_id")
	if err != nil {
		writeError(w, r, err)
		return
	}
	q := query.ListReactions{
		MessageID: pathParam(r, "id"),
		Limit:     params.int("limit", messageapi.LimitRule),
		Cursor:    params.str("cursor"),
		Type:      params.str("type"),
		UserID:    params.str("user_id"),
	}
	if err := params.err(); err != nil {
		writeError(w, r, err)
		return
	}
	page, err := s.ListReactions.Handle(r.Context(), q)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, r, http.StatusOK, page)
}

// readerUser returns the user whose own reactions a read shows: the
// user_id parameter, or the user of a user token, which may not name
// another user (see actingUser); nil when there is none.
func readerUser(r *http.Request, params *params) (*string, error) {
	given := params.str("user_id")
	if given != nil && *given == "" {
		return given, nil // invalid: the query's validation says so
	}
	var name string
	if given != nil {
		name = *given
	}
	user, err := actingUser(r, name)
	if err != nil || user == "" {
		return nil, err
	}
	return &user, nil
}

// channelParam returns the channel a route names, or
// messageapi.DefaultChannel for the routes that name none. An empty
// segment (/channels//messages) is no route, as the contract has it; it
// is refused here because the use cases read an empty channel as the
// default one.
func channelParam(r *http.Request) (string, error) {
	rc := chi.RouteContext(r.Context())
	if rc == nil || !strings.HasPrefix(rc.RoutePattern(), "/channels/") {
		return messageapi.DefaultChannel, nil
	}
	if channel := pathParam(r, "channel_id"); channel != "" {
		return channel, nil
	}
	return "", messageapi.Errorf(messageapi.ENOTFOUND, "no route for %s %s", r.Method, r.URL.Path)
}

// deref returns *s, or "" when s is nil.
func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// pathParam returns a path segment captured by the route, decoded: a
// client that percent-encodes its path segments (encodeURIComponent turns
// the type "+1" into "%2B1") names the same message or reaction as one
// that does not. A segment that does not decode is returned as it is, and
// fails validation.
func pathParam(r *http.Request, name string) string {
	raw := chi.URLParam(r, name)
	if s, err := url.PathUnescape(raw); err == nil {
		return s
	}
	return raw
}

// params holds a request's query parameters and the problems found while
// reading them, so one 400 names every bad parameter.
type params struct {
	values url.Values
	fields map[string]string
}

// queryParams parses the query string, refusing malformed encoding,
// parameters not in known and parameters given twice.
func queryParams(r *http.Request, known ...string) (*params, error) {
	values, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, invalid("query string is malformed")
	}
	p := &params{values: values, fields: map[string]string{}}
	allowed := map[string]bool{}
	for _, k := range known {
		allowed[k] = true
	}
	for k, vs := range values {
		switch {
		case !allowed[k]:
			p.fields[k] = "is not a known parameter"
		case len(vs) > 1:
			p.fields[k] = "must be given once"
		}
	}
	return p, nil
}

// str returns the parameter, or nil when it is absent.
func (p *params) str(name string) *string {
	vs, ok := p.values[name]
	if !ok {
		return nil
	}
	return &vs[0]
}

// list returns every value of a repeatable parameter.
func (p *params) list(name string) []string {
	if p.fields[name] == "must be given once" {
		delete(p.fields, name)
	}
	return p.values[name]
}

// int returns the parameter as an integer, or nil when it is absent. A
// value that is not an integer is recorded with reason.
func (p *params) int(name, reason string) *int {
	s := p.str(name)
	if s == nil {
		return nil
	}
	n, err := strconv.Atoi(*s)
	if err != nil {
		p.fields[name] = reason
		return nil
	}
	return &n
}

// decodeBody reads the JSON body of a route that takes no query
// parameters into dst.
func decodeBody(w http.ResponseWriter, r *http.Request, dst any) error {
	if err := noParams(r); err != nil {
		return err
	}
	return decodeJSON(w, r, dst)
}

// decodeWrite reads the JSON body of a write into dst, then sets
// *userID, dst's user id field, to the user the request acts for.
func decodeWrite(w http.ResponseWriter, r *http.Request, dst any, userID *string) error {
	if err := decodeBody(w, r, dst); err != nil {
		return err
	}
	var err error
	*userID, err = actingUser(r, *userID)
	return err
}

// noParams rejects any query parameter, for routes that take none.
func noParams(r *http.Request) error {
	p, err := queryParams(r)
	if err != nil {
		return err
	}
	return p.err()
}

func (p *params) err() error {
	if len(p.fields) == 0 {
		return nil
	}
	return messageapi.InvalidFields(p.fields)
}
