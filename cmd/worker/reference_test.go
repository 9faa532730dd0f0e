package main

import (
	"flag"
	"io"
	"testing"

	"messageapi/cmd/internal/daemon"
)

var update = flag.Bool("update", false, "rewrite the worker's table in docs/configuration.md")

// TestConfigReferenceIsCurrent: the worker's table in
// docs/configuration.md is the one its flag definitions make (go test
// ./cmd/worker -run TestConfigReference -update rewrites it).
func TestConfigReferenceIsCurrent(t *testing.T) {
	f := daemon.NewFlags("worker", usage, func(string) string { return "" }, io.Discard)
	var c config
	var maxDeliveries int
	defineFlags(f, &c, &maxDeliveries)
	if err := daemon.CheckReference("../../docs/configuration.md", "worker", f.Reference(), *update); err != nil {
		t.Error(err)
	}
}
