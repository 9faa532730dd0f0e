package main

import (
	"io"
	"testing"

	"messageapi/cmd/internal/daemon"
)

// TestConfigReferenceIsCurrent: the API's table in docs/configuration.md
// is the one its flag definitions make (go test ./cmd/api -run
// TestConfigReference -update rewrites it).
func TestConfigReferenceIsCurrent(t *testing.T) {
	f := daemon.NewFlags("api", usage, func(string) string { return "" }, io.Discard)
	var c config
	var raw rawSettings
	defineFlags(f, &c, &raw, "serve")
	if err := daemon.CheckReference("../../docs/configuration.md", "api", f.Reference(), *updateGolden); err != nil {
		t.Error(err)
	}
}
