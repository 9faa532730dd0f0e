package daemon

import (
	"runtime"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestBuildInfoGauge: messageapi_build_info is 1 with the build's labels;
// unstamped, the labels still have values, and goversion is the Go that
// built the binary.
func TestBuildInfoGauge(t *testing.T) {
	b := ReadBuildInfo()
	if b.Version == "" || b.Revision == "" || b.GoVersion != runtime.Version() {
		t.Errorf("unstamped build info %+v; want every label set and goversion %s", b, runtime.Version())
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(newBuildInfoGauge(BuildInfo{Version: "1.4.0", Revision: "abc123", GoVersion: "go1.26.0"}))
	want := `
# HELP messageapi_build_info Always 1; its labels name the build: version (stamped with -ldflags -X), revision (the commit) and goversion.
# TYPE messageapi_build_info gauge
messageapi_build_info{goversion="go1.26.0",revision="abc123",version="1.4.0"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "messageapi_build_info"); err != nil {
		t.Error(err)
	}
}
