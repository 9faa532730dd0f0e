package daemon

import (
	"fmt"
	"io"
	"log/slog"
)

// NewLogger returns a JSON logger at level (debug, info, warn or error)
// whose every line names the service, so the lines of the API and of the
// worker can be told apart where they are interleaved.
func NewLogger(w io.Writer, level, service string) (*slog.Logger, error) {
	l, err := ParseLevel(level)
	if err != nil {
		return nil, err
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l})).With("service", service), nil
}

// ParseLevel parses a level name as NewLogger does.
func ParseLevel(level string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return 0, fmt.Errorf("%q is not debug, info, warn or error", level)
	}
	return l, nil
}
