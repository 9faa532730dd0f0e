package e2e_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"messageapi/deploy"
)

// notExportedWithoutFaults are metrics the operator pack uses that the
// programs export only after a fault, so a healthy stack's /metrics
// lacks them: client_golang exports no series, nor HELP and TYPE lines,
// of a vector until one of its label sets has a value. Each is checked
// against the Go source instead, so that none can be a typo.
var notExportedWithoutFaults = map[string]string{
	// A CounterVec by reason: no series until the server ends a stream
	// (slow, write) or shuts down with streams open.
	"messageapi_sse_dropped_total": "sse/metrics.go",
}

// checkOperatorPack checks that every metric the Prometheus rules and the
// Grafana dashboard of deploy/ name is one the API or the worker exports
// on /metrics, or, for those only a fault brings, one the source
// declares. Recording rules of rules.yml and up (Prometheus's own) are
// not the programs'. It runs on a stack that has served the whole
// end-to-end scenario, so the metrics that need activity have it.
func checkOperatorPack(t *testing.T, s *stack) {
	t.Helper()
	exprs, recorded, err := deploy.Expressions()
	if err != nil {
		t.Fatal(err)
	}
	exported := map[string]bool{}
	histograms := map[string]bool{}
	family := regexp.MustCompile(`^# (?:HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*)(?: (\S+))?`)
	sample := regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]`)
	for _, admin := range []string{s.admin, "http://" + s.worker.addr("admin")} {
		for line := range strings.Lines(callAdmin(t, admin+"/metrics").raw) {
			if m := family.FindStringSubmatch(line); m != nil {
				exported[m[1]] = true
				if strings.HasPrefix(line, "# TYPE ") && m[2] == "histogram" {
					histograms[m[1]] = true
				}
			} else if m := sample.FindStringSubmatch(line); m != nil {
				exported[m[1]] = true
			}
		}
	}
	if !exported["messageapi_http_requests_total"] || !exported["messageapi_projection_lag_seconds"] {
		t.Fatalf("the scrapes lack the API's or the worker's metrics; is the parsing out of date? %d names", len(exported))
	}

	used := map[string]bool{}
	for _, e := range exprs {
		for _, name := range deploy.MetricNames(e.PromQL) {
			if name == "up" || slices.Contains(recorded, name) {
				continue
			}
			used[name] = true
			base := name
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if b, ok := strings.CutSuffix(name, suffix); ok && histograms[b] {
					base = b
				}
			}
			switch {
			case exported[name] || exported[base] && base != name:
			case notExportedWithoutFaults[name] != "":
			default:
				t.Errorf("%s: %s is exported by neither the API nor the worker", e.Where, name)
			}
		}
	}

	// The names only a fault brings: declared in the source, and still
	// used by the pack (a stale entry could hide a typo later).
	for name, file := range notExportedWithoutFaults {
		if !used[name] {
			t.Errorf("notExportedWithoutFaults lists %s, which the operator pack no longer uses", name)
		}
		if exported[name] {
			t.Logf("%s is exported already; it may leave notExportedWithoutFaults", name)
		}
		if src := declaredIn(t, `"`+name+`"`); !slices.Contains(src, file) {
			t.Errorf("%s is not declared in %s (found in %v)", name, file, src)
		}
	}
}

// declaredIn lists the Go files of the module, tests aside, that hold a
// string, relative to its root.
func declaredIn(t *testing.T, s string) []string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if strings.Contains(string(b), s) {
			rel, _ := filepath.Rel(root, path)
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}
