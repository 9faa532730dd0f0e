package postgres

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"messageapi"
)

// The JSON columns of message_views are stored compact (migration 012):
// a view is the largest row per message, and most of its bytes were the
// key names and RFC 3339 times repeated in every element.
//
//   - reaction_groups: {"<type>": [count, sum_scores, first_ms, last_ms]},
//     the times in milliseconds since the Unix epoch;
//   - latest_reactions: [[id, user_id, type, score, created_ms], ...],
//     with updated_ms as a sixth element when it differs from created_ms;
//     the message id is the view's own.
//
// Rows not rewritten since the migration hold the object forms of before
// it ({"count": ..., "first_reaction_at": "..."} and reaction objects),
// and both are read. The API's JSON is the same whichever form a row
// holds: only this file knows it.

// storedGroups is reaction_groups as read from either form.
type storedGroups map[string]messageapi.ReactionGroup

// UnmarshalJSON reads both forms of reaction_groups.
func (g *storedGroups) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("reaction_groups: %w", err)
	}
	out := make(storedGroups, len(raw))
	for typ, v := range raw {
		var grp messageapi.ReactionGroup
		if v = bytes.TrimSpace(v); len(v) > 0 && v[0] == '{' {
			if err := json.Unmarshal(v, &grp); err != nil {
				return fmt.Errorf("reaction_groups.%s: %w", typ, err)
			}
		} else {
			var a [4]int64
			if err := json.Unmarshal(v, &a); err != nil {
				return fmt.Errorf("reaction_groups.%s: %w", typ, err)
			}
			grp = messageapi.ReactionGroup{Count: a[0], SumScores: a[1], FirstReactionAt: fromMillis(a[2]), LastReactionAt: fromMillis(a[3])}
		}
		out[typ] = grp
	}
	*g = out
	return nil
}

// encodeGroups writes reaction_groups in the compact form.
func encodeGroups(groups map[string]messageapi.ReactionGroup) []byte {
	b := []byte{'{'}
	first := true
	for typ, g := range groups {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = strconv.AppendQuote(b, typ) // types are [a-z0-9_+-]: plain JSON strings
		b = append(b, ":["...)
		b = strconv.AppendInt(b, g.Count, 10)
		b = append(b, ',')
		b = strconv.AppendInt(b, g.SumScores, 10)
		b = append(b, ',')
		b = strconv.AppendInt(b, millis(g.FirstReactionAt), 10)
		b = append(b, ',')
		b = strconv.AppendInt(b, millis(g.LastReactionAt), 10)
		b = append(b, ']')
	}
	return append(b, '}')
}

// storedReactions is latest_reactions as read from either form, without
// message ids in the compact one: setMessage fills them in.
type storedReactions []messageapi.Reaction

// UnmarshalJSON reads both forms of latest_reactions: the compact one
// with a scanner of its own (every page read from PostgreSQL decodes ten
// of them a message), anything else with encoding/json.
func (rs *storedReactions) UnmarshalJSON(b []byte) error {
	if out, ok := scanCompactReactions(b); ok {
		*rs = out
		return nil
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("latest_reactions: %w", err)
	}
	out := make(storedReactions, len(raw))
	for i, v := range raw {
		if v = bytes.TrimSpace(v); len(v) > 0 && v[0] == '{' {
			if err := json.Unmarshal(v, &out[i]); err != nil {
				return fmt.Errorf("latest_reactions.%d: %w", i, err)
			}
			continue
		}
		var a []json.RawMessage
		if err := json.Unmarshal(v, &a); err != nil || len(a) < 5 {
			return fmt.Errorf("latest_reactions.%d: want [id, user_id, type, score, created_ms(, updated_ms)]", i)
		}
		r := &out[i]
		var created, updated int64
		err := joinErrs(json.Unmarshal(a[0], &r.ID), json.Unmarshal(a[1], &r.UserID), json.Unmarshal(a[2], &r.Type),
			json.Unmarshal(a[3], &r.Score), json.Unmarshal(a[4], &created))
		updated = created
		if err == nil && len(a) > 5 {
			err = json.Unmarshal(a[5], &updated)
		}
		if err != nil {
			return fmt.Errorf("latest_reactions.%d: %w", i, err)
		}
		r.CreatedAt, r.UpdatedAt = fromMillis(created), fromMillis(updated)
	}
	*rs = out
	return nil
}

// of returns the reactions of message id: the compact form leaves the
// message id out.
func (rs storedReactions) of(id string) []messageapi.Reaction {
	out := []messageapi.Reaction(rs)
	if out == nil {
		return []messageapi.Reaction{}
	}
	for i := range out {
		out[i].MessageID = id
	}
	return out
}

// encodeReactions writes latest_reactions in the compact form.
func encodeReactions(rs []messageapi.Reaction) ([]byte, error) {
	b := []byte{'['}
	for i, r := range rs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '[')
		for j, s := range []string{r.ID, r.UserID, r.Type} {
			if j > 0 {
				b = append(b, ',')
			}
			q, err := json.Marshal(s)
			if err != nil {
				return nil, err
			}
			b = append(b, q...)
		}
		b = append(b, ',')
		b = strconv.AppendInt(b, int64(r.Score), 10)
		b = append(b, ',')
		created, updated := millis(r.CreatedAt), millis(r.UpdatedAt)
		b = strconv.AppendInt(b, created, 10)
		if updated != created {
			b = append(b, ',')
			b = strconv.AppendInt(b, updated, 10)
		}
		b = append(b, ']')
	}
	return append(b, ']'), nil
}

func millis(t messageapi.Time) int64 { return t.UnixMilli() }

func fromMillis(ms int64) messageapi.Time { return messageapi.NewTime(time.UnixMilli(ms)) }

// joinErrs returns the first error of errs.
func joinErrs(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// scanCompactReactions reads latest_reactions in the compact form, as
// PostgreSQL writes jsonb out, and reports false for anything else (the
// object form, a string with an escape, bad input), which the caller then
// reads with encoding/json.
func scanCompactReactions(b []byte) (storedReactions, bool) {
	sc := scanner{b: b}
	if !sc.byte('[') {
		return nil, false
	}
	out := storedReactions{}
	if sc.byte(']') {
		return out, sc.end()
	}
	for {
		var r messageapi.Reaction
		var score, created int64
		ok := sc.byte('[') && sc.str(&r.ID) && sc.byte(',') && sc.str(&r.UserID) && sc.byte(',') && sc.str(&r.Type) &&
			sc.byte(',') && sc.int(&score) && sc.byte(',') && sc.int(&created)
		if !ok {
			return nil, false
		}
		r.Score = int(score)
		updated := created
		if sc.byte(',') && !sc.int(&updated) {
			return nil, false
		}
		if !sc.byte(']') {
			return nil, false
		}
		r.CreatedAt, r.UpdatedAt = fromMillis(created), fromMillis(updated)
		out = append(out, r)
		if sc.byte(']') {
			return out, sc.end()
		}
		if !sc.byte(',') {
			return nil, false
		}
	}
}

// scanner reads the few JSON tokens of the compact form.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) space() {
	for s.i < len(s.b) && (s.b[s.i] == ' ' || s.b[s.i] == '\n' || s.b[s.i] == '\t' || s.b[s.i] == '\r') {
		s.i++
	}
}

// byte consumes c, after any space, if it is next.
func (s *scanner) byte(c byte) bool {
	s.space()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// str reads a string without escapes.
func (s *scanner) str(out *string) bool {
	if !s.byte('"') {
		return false
	}
	start := s.i
	for s.i < len(s.b) && s.b[s.i] != '"' {
		if s.b[s.i] == '\\' || s.b[s.i] < 0x20 {
			return false
		}
		s.i++
	}
	if s.i == len(s.b) {
		return false
	}
	*out = string(s.b[start:s.i])
	s.i++
	return true
}

// int reads an integer.
func (s *scanner) int(out *int64) bool {
	s.space()
	start := s.i
	if s.i < len(s.b) && s.b[s.i] == '-' {
		s.i++
	}
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
	}
	n, err := strconv.ParseInt(string(s.b[start:s.i]), 10, 64)
	*out = n
	return err == nil
}

// end reports whether nothing but space is left.
func (s *scanner) end() bool {
	s.space()
	return s.i == len(s.b)
}
