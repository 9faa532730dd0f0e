package daemon

import (
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
)

// Version is the release of both programs, stamped at build time:
//
//	go build -ldflags "-X messageapi/cmd/internal/daemon.Version=1.4.0" ./cmd/api
//
// (make build and the Dockerfile do). Unstamped, it is the main module's
// version as Go recorded it (a pseudo-version from the commit, with
// +dirty for uncommitted changes), or "unknown".
var Version string

// Revision is the commit both programs were built from. go build stamps
// it by itself in a git checkout; a build without the .git directory, as
// in the Dockerfile, can stamp it like Version
// (-X messageapi/cmd/internal/daemon.Revision=...). Stamped, it wins.
var Revision string

// BuildInfo is what the messageapi_build_info gauge says of a binary.
type BuildInfo struct {
	Version, Revision, GoVersion string
}

// ReadBuildInfo returns the build's stamps: the -ldflags variables first,
// then what Go recorded in the binary, then "unknown".
func ReadBuildInfo() BuildInfo {
	b := BuildInfo{Version: Version, Revision: Revision, GoVersion: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.GoVersion != "" {
			b.GoVersion = bi.GoVersion
		}
		if b.Version == "" && bi.Main.Version != "(devel)" {
			b.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && b.Revision == "" {
				b.Revision = s.Value
			}
		}
	}
	if b.Version == "" {
		b.Version = "unknown"
	}
	if b.Revision == "" {
		b.Revision = "unknown"
	}
	return b
}

// newBuildInfoGauge is messageapi_build_info: always 1, its labels saying
// which build runs, so a dashboard can tell releases apart and a query
// can join on it.
func newBuildInfoGauge(b BuildInfo) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "messageapi_build_info",
		Help:        "Always 1; its labels name the build: version (stamped with -ldflags -X), revision (the commit) and goversion.",
		ConstLabels: prometheus.Labels{"version": b.Version, "revision": b.Revision, "goversion": b.GoVersion},
	}, func() float64 { return 1 })
}
