package deploy_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"messageapi/deploy"
)

func TestMetricNames(t *testing.T) {
	t.Parallel()
	for expr, want := range map[string][]string{
		`up{job=~"messageapi-api|messageapi-worker"} == 0`: {"up"},
		`histogram_quantile(0.99, sum by (method, route, le) (rate(messageapi_http_request_duration_seconds_bucket{route!="unmatched"}[5m])))`: {
			"messageapi_http_request_duration_seconds_bucket"},
		`sum(rate(x_total{route="/channels/{channel_id}/messages", code=~"5.."}[$__rate_interval])) / sum(rate(x_total[5m] offset 1h))`: {"x_total"},
		`route:a:p99 > 0.5 and on (method, route) route:b:rate5m > 1e-1`:                                                                {"route:a:p99", "route:b:rate5m"},
		`rate(a_seconds_total[5m]) / ignoring(db) group_left(version) b_info * 1e9`:                                                     {"a_seconds_total", "b_info"},
		`sum without (partition) (p) + count(q) by (instance) - max_over_time(r[10m:1m])`:                                               {"p", "q", "r"},
		`label_replace(m, "dst", "$1", "src", "(.*)") unless absent(n)`:                                                                 {"m", "n"},
	} {
		if got := deploy.MetricNames(expr); !slices.Equal(got, want) {
			t.Errorf("MetricNames(%s) = %q; want %q", expr, got, want)
		}
	}
}

// TestPackNamesOnlyWhatItDefinesOrScrapes: every expression names at
// least one series, and every name with a colon (the recording-rule
// convention) is a rule of rules.yml. Whether the other names are
// exported is checked against the running programs, in e2e/.
func TestPackNamesOnlyWhatItDefinesOrScrapes(t *testing.T) {
	t.Parallel()
	exprs, recorded, err := deploy.Expressions()
	if err != nil {
		t.Fatal(err)
	}
	var fromDashboard int
	for _, e := range exprs {
		if strings.HasPrefix(e.Where, "dashboard.json") {
			fromDashboard++
		}
		names := deploy.MetricNames(e.PromQL)
		if len(names) == 0 {
			t.Errorf("%s: %s names no series", e.Where, e.PromQL)
		}
		for _, n := range names {
			if strings.Contains(n, ":") && !slices.Contains(recorded, n) {
				t.Errorf("%s: %s is not a recording rule of rules.yml", e.Where, n)
			}
		}
	}
	if len(recorded) < 5 || fromDashboard < 20 {
		t.Errorf("found %d recording rules and %d dashboard expressions; is the parsing out of date?", len(recorded), fromDashboard)
	}
}

// TestDashboardUsesItsDatasourceVariable: the dashboard imports into any
// Grafana: every panel and query takes its Prometheus from the variable
// ${datasource}, which the dashboard declares.
func TestDashboardUsesItsDatasourceVariable(t *testing.T) {
	t.Parallel()
	type datasource struct{ Type, UID string }
	var d struct {
		SchemaVersion int
		UID           string
		Templating    struct {
			List []struct{ Name, Type, Query string }
		}
		Panels []struct {
			Type, Title string
			Datasource  *datasource
			Targets     []struct {
				Expr       string
				Datasource *datasource
			}
		}
	}
	if err := json.Unmarshal(deploy.DashboardJSON, &d); err != nil {
		t.Fatal(err)
	}
	if d.SchemaVersion < 36 || d.UID == "" {
		t.Errorf("schemaVersion %d, uid %q; want a current schema and a fixed uid", d.SchemaVersion, d.UID)
	}
	if !slices.ContainsFunc(d.Templating.List, func(v struct{ Name, Type, Query string }) bool {
		return v.Name == "datasource" && v.Type == "datasource" && v.Query == "prometheus"
	}) {
		t.Errorf("no Prometheus datasource variable named datasource: %+v", d.Templating.List)
	}
	want := datasource{Type: "prometheus", UID: "${datasource}"}
	for _, p := range d.Panels {
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || *p.Datasource != want || len(p.Targets) == 0 {
			t.Errorf("panel %q: datasource %+v, %d queries; want %+v and at least one query", p.Title, p.Datasource, len(p.Targets), want)
		}
		for _, q := range p.Targets {
			if q.Datasource == nil || *q.Datasource != want || q.Expr == "" {
				t.Errorf("panel %q: a query with datasource %+v and expression %q", p.Title, q.Datasource, q.Expr)
			}
		}
	}
}
