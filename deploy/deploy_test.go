package deploy_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// promtool returns the path of promtool. Without it the rules go
// untested: under CI=true that fails the test, naming the package to
// install; elsewhere the tests that need it skip.
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err == nil {
		return p
	}
	const install = "promtool is not on PATH, so deploy/prometheus/rules.yml cannot be checked; " +
		"it comes with the Debian package prometheus: apt-get install -y prometheus"
	if os.Getenv("CI") == "true" {
		t.Fatal(install)
	}
	t.Skip(install)
	return ""
}

func runPromtool(t *testing.T, args ...string) {
	t.Helper()
	cmd := exec.Command(promtool(t), args...)
	cmd.Dir = "prometheus"
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestRulesAreValid: promtool parses every rule and expression.
func TestRulesAreValid(t *testing.T) {
	t.Parallel()
	runPromtool(t, "check", "rules", "rules.yml")
}

// TestRulesUnitTests runs the promtool unit tests of the rules.
func TestRulesUnitTests(t *testing.T) {
	t.Parallel()
	runPromtool(t, "test", "rules", "rules_test.yml")
}

// TestPromtoolMissing runs the promtool tests again in a child process
// whose PATH holds no promtool: with CI=true they must fail naming the
// package, without it skip.
func TestPromtoolMissing(t *testing.T) {
	t.Parallel()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	empty := t.TempDir()
	for _, ci := range []string{"true", ""} {
		cmd := exec.Command(exe, "-test.run=^TestRulesAreValid$", "-test.v", "-test.count=1")
		cmd.Env = append(withoutVars(os.Environ(), "PATH", "CI"), "PATH="+empty, "CI="+ci)
		out, err := cmd.CombinedOutput()
		named := strings.Contains(string(out), "apt-get install -y prometheus")
		switch {
		case ci == "true" && (err == nil || !named || !strings.Contains(string(out), "--- FAIL")):
			t.Errorf("CI=true without promtool: err %v; want a failure naming apt-get install -y prometheus; output:\n%s", err, out)
		case ci == "" && (err != nil || !named || !strings.Contains(string(out), "--- SKIP")):
			t.Errorf("without CI and promtool: err %v; want a skip naming apt-get install -y prometheus; output:\n%s", err, out)
		}
	}
}

func withoutVars(env []string, names ...string) []string {
	var out []string
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		keep := true
		for _, n := range names {
			keep = keep && k != n
		}
		if keep {
			out = append(out, kv)
		}
	}
	return out
}

type rule struct {
	Record      string
	Alert       string
	Expr        string
	Labels      map[string]string
	Annotations map[string]string
}

func readRules(t *testing.T) []rule {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("prometheus", "rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var file struct{ Groups []struct{ Rules []rule } }
	if err := yaml.Unmarshal(b, &file); err != nil {
		t.Fatal(err)
	}
	var rules []rule
	for _, g := range file.Groups {
		rules = append(rules, g.Rules...)
	}
	return rules
}

// headings are the anchors GitHub gives the headings of a Markdown file.
func headings(t *testing.T, path string) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	heading := regexp.MustCompile(`^#{1,6} (.+)$`)
	anchors := map[string]bool{}
	code := false
	for line := range strings.Lines(string(b)) {
		line = strings.TrimRight(line, "\n")
		if strings.HasPrefix(line, "```") {
			code = !code
		}
		if m := heading.FindStringSubmatch(line); m != nil && !code {
			var s strings.Builder
			for _, r := range strings.ToLower(strings.ReplaceAll(m[1], "`", "")) {
				switch {
				case r == ' ' || r == '-':
					s.WriteRune('-')
				case r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r > 127:
					s.WriteRune(r)
				}
			}
			anchors[s.String()] = true
		}
	}
	return anchors
}

// TestAlertsSayWhatToDo: every alert has a severity, a summary, a
// description and a runbook that is a section of docs/operations.md.
func TestAlertsSayWhatToDo(t *testing.T) {
	t.Parallel()
	anchors := headings(t, filepath.Join("..", "docs", "operations.md"))
	alerts := 0
	for _, r := range readRules(t) {
		if r.Alert == "" {
			continue
		}
		alerts++
		if s := r.Labels["severity"]; s != "warning" && s != "critical" {
			t.Errorf("%s: severity %q; want warning or critical", r.Alert, s)
		}
		for _, a := range []string{"summary", "description", "runbook"} {
			if strings.TrimSpace(r.Annotations[a]) == "" {
				t.Errorf("%s: no %s annotation", r.Alert, a)
			}
		}
		anchor, ok := strings.CutPrefix(r.Annotations["runbook"], "docs/operations.md#")
		if !ok || !anchors[anchor] {
			t.Errorf("%s: runbook %q is not a section of docs/operations.md", r.Alert, r.Annotations["runbook"])
		}
		if want := strings.ToLower(r.Alert); anchor != want {
			t.Errorf("%s: runbook anchor %q; want the alert's own section, #%s", r.Alert, anchor, want)
		}
	}
	if alerts < 11 {
		t.Errorf("found %d alerts in rules.yml; is the parsing out of date?", alerts)
	}
}

// TestEveryAlertIsTestedBothWays: rules_test.yml has, for every alert,
// a case where it fires and one where it does not.
func TestEveryAlertIsTestedBothWays(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join("prometheus", "rules_test.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string
				ExpAlerts []map[string]any `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		}
	}
	if err := yaml.Unmarshal(b, &file); err != nil {
		t.Fatal(err)
	}
	fires, silent := map[string]bool{}, map[string]bool{}
	for _, tc := range file.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			} else {
				silent[a.Alertname] = true
			}
		}
	}
	for _, r := range readRules(t) {
		if r.Alert == "" {
			continue
		}
		if !fires[r.Alert] {
			t.Errorf("%s: no case in rules_test.yml where it fires", r.Alert)
		}
		if !silent[r.Alert] {
			t.Errorf("%s: no case in rules_test.yml where it does not fire", r.Alert)
		}
	}
}
