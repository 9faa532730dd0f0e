package messageapi

import (
	"fmt"
	"time"
)

// TimeLayout is how the API writes instants: RFC 3339 in UTC with exactly
// three fractional digits, so clients can parse every value with one layout.
const TimeLayout = "2006-01-02T15:04:05.000Z07:00"

// Time is an instant in UTC with millisecond precision. Every time the
// service stores is truncated to the millisecond first, so what a client
// reads equals what PostgreSQL holds, and a time in a cursor compares
// exactly with the stored one.
type Time struct{ time.Time }

// NewTime returns t in UTC, truncated to the millisecond.
func NewTime(t time.Time) Time {
	return Time{t.UTC().Truncate(time.Millisecond)}
}

// MarshalJSON writes the time in TimeLayout.
func (t Time) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, len(TimeLayout)+2)
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, TimeLayout)
	return append(b, '"'), nil
}

// UnmarshalJSON reads any RFC 3339 time and normalises it like NewTime;
// null is the zero time.
func (t *Time) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*t = Time{}
		return nil
	}
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return fmt.Errorf("time must be an RFC 3339 string")
	}
	p, err := time.Parse(time.RFC3339Nano, string(b[1:len(b)-1]))
	if err != nil {
		return fmt.Errorf("parse time: %w", err)
	}
	*t = NewTime(p)
	return nil
}
