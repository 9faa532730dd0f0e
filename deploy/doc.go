// Package deploy is the operator pack of the Message API: the Prometheus
// recording and alerting rules (prometheus/rules.yml) with their
// promtool unit tests (prometheus/rules_test.yml), and a Grafana
// dashboard (grafana/dashboard.json). Its tests run promtool on the
// rules; the e2e tests check every metric the pack names against what
// the real programs export. See docs/observability.md.
package deploy
