package deploy

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The pack's files, as operators load them.
var (
	//go:embed prometheus/rules.yml
	RulesYAML []byte
	//go:embed grafana/dashboard.json
	DashboardJSON []byte
)

// An Expression is a PromQL expression of the pack, and where it is: the
// rule it records or alerts, or the dashboard panel it draws.
type Expression struct {
	Where, PromQL string
}

// Expressions are every PromQL expression of rules.yml and
// dashboard.json, with the names of the recording rules of rules.yml.
func Expressions() (exprs []Expression, recorded []string, err error) {
	var rules struct {
		Groups []struct {
			Name  string
			Rules []struct{ Record, Alert, Expr string }
		}
	}
	if err := yaml.Unmarshal(RulesYAML, &rules); err != nil {
		return nil, nil, fmt.Errorf("rules.yml: %w", err)
	}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			exprs = append(exprs, Expression{Where: "rules.yml: " + r.Record + r.Alert, PromQL: r.Expr})
			if r.Record != "" {
				recorded = append(recorded, r.Record)
			}
		}
	}
	var dashboard any
	if err := json.Unmarshal(DashboardJSON, &dashboard); err != nil {
		return nil, nil, fmt.Errorf("dashboard.json: %w", err)
	}
	var walk func(v any, panel string)
	walk = func(v any, panel string) {
		switch v := v.(type) {
		case map[string]any:
			if title, ok := v["title"].(string); ok {
				panel = title
			}
			if expr, ok := v["expr"].(string); ok {
				exprs = append(exprs, Expression{Where: "dashboard.json: " + panel, PromQL: expr})
			}
			for _, child := range v {
				walk(child, panel)
			}
		case []any:
			for _, child := range v {
				walk(child, panel)
			}
		}
	}
	walk(dashboard, "")
	return exprs, recorded, nil
}

// promqlToken splits PromQL: quoted strings, label matchers (whose
// values may hold braces), range and subquery brackets, numbers and
// durations, identifiers, Grafana variables, and single characters.
var promqlToken = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`" +
	`|\{(?:"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|[^}"'])*\}|\[[^\]]*\]` +
	`|[0-9][0-9.]*(?:[eE][+-]?[0-9]+)?[a-zA-Z]*|\$\{?[a-zA-Z_][a-zA-Z0-9_]*\}?|[a-zA-Z_:][a-zA-Z0-9_:]*|\S`)

// keywords are PromQL's words that are neither metrics nor functions:
// aggregations (which may be followed by by or without before their
// parenthesis), operators and modifiers.
var keywords = map[string]bool{
	"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true, "stdvar": true,
	"count": true, "count_values": true, "bottomk": true, "topk": true, "quantile": true,
	"limitk": true, "limit_ratio": true,
	"and": true, "or": true, "unless": true, "atan2": true, "bool": true, "offset": true,
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
	"inf": true, "nan": true,
}

// labelLists are the keywords followed by a parenthesised list of label
// names, not of expressions.
var labelLists = map[string]bool{
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
}

// MetricNames are the metric names (and recording-rule names) a PromQL
// expression selects, sorted, each once: every identifier that is not a
// function, a keyword, or a label of a matcher or a by/on list.
func MetricNames(promql string) []string {
	tokens := promqlToken.FindAllString(promql, -1)
	var names []string
	for i := 0; i < len(tokens); i++ {
		tok := tokens[i]
		if !isIdentifier(tok) {
			continue
		}
		lower := strings.ToLower(tok)
		next := ""
		if i+1 < len(tokens) {
			next = tokens[i+1]
		}
		if labelLists[lower] && next == "(" {
			for i++; i < len(tokens) && tokens[i] != ")"; i++ {
			}
			continue
		}
		if keywords[lower] || next == "(" {
			continue
		}
		names = append(names, tok)
	}
	slices.Sort(names)
	return slices.Compact(names)
}

func isIdentifier(tok string) bool {
	c := tok[0]
	return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}
