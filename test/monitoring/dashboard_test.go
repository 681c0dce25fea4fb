package monitoring

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// dashboardQuery is one PromQL expression of the dashboard: a panel's
// target, or a template variable's label_values().
type dashboardQuery struct {
	where  string // the panel or variable, for messages
	expr   string
	legend string
	// parsed is expr as Prometheus parses it; nil when it does not parse.
	parsed parser.Expr
}

type dashboardPanel struct {
	Title   string `json:"title"`
	Targets []struct {
		Expr         string `json:"expr"`
		LegendFormat string `json:"legendFormat"`
	} `json:"targets"`
	// Panels are a collapsed row's.
	Panels []dashboardPanel `json:"panels"`
}

// dashboardQueries reads every query of config/grafana's dashboard and
// parses it, failing the test for each that does not parse.
func dashboardQueries(t *testing.T) []dashboardQuery {
	t.Helper()
	content, err := os.ReadFile(repoPath("config", "grafana", "extractionjobs-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dashboard struct {
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Type  string `json:"type"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
		Panels []dashboardPanel `json:"panels"`
	}
	if err := json.Unmarshal(content, &dashboard); err != nil {
		t.Fatalf("the dashboard is not JSON: %v", err)
	}
	var queries []dashboardQuery
	for _, v := range dashboard.Templating.List {
		if v.Type != "query" {
			continue
		}
		query, ok := v.Query.(string)
		m := labelValues.FindStringSubmatch(query)
		if !ok || m == nil {
			t.Errorf("variable %s: query %v is not label_values(metric, label)", v.Name, v.Query)
			continue
		}
		// label_values(metric, label) asks for the series of metric: its
		// label must be there, as if a legend named it.
		queries = append(queries, dashboardQuery{where: "variable " + v.Name, expr: m[1], legend: "{{" + m[2] + "}}"})
	}
	var addPanels func([]dashboardPanel)
	addPanels = func(panels []dashboardPanel) {
		for _, panel := range panels {
			for _, target := range panel.Targets {
				queries = append(queries, dashboardQuery{where: "panel " + panel.Title, expr: target.Expr, legend: target.LegendFormat})
			}
			addPanels(panel.Panels)
		}
	}
	addPanels(dashboard.Panels)
	if len(queries) == 0 {
		t.Fatal("the dashboard has no query")
	}
	for i := range queries {
		q := &queries[i]
		if q.parsed, err = promqlParser.ParseExpr(promQL(q.expr)); err != nil {
			q.parsed = nil
			t.Errorf("%s: %q: %v", q.where, q.expr, err)
		}
	}
	return queries
}

// promqlParser parses as a Prometheus server with default flags does: no
// experimental functions.
var promqlParser = parser.NewParser(parser.Options{})

var (
	labelValues = regexp.MustCompile(`^label_values\(\s*(.+?)\s*,\s*(\w+)\s*\)$`)
	// grafanaVariable is $name or ${name}; the ranges Grafana fills in
	// become durations, every other variable the regular expression its
	// "All" stands for.
	grafanaVariable = regexp.MustCompile(`\$\{?(\w+)\}?`)
	legendLabel     = regexp.MustCompile(`\{\{\s*(\w+)\s*\}\}`)
)

// promQL is the query as Prometheus receives it from Grafana.
func promQL(expr string) string {
	return grafanaVariable.ReplaceAllStringFunc(expr, func(v string) string {
		switch strings.Trim(v, "${}") {
		case "__rate_interval", "__interval":
			return "1m"
		case "__range":
			return "6h"
		default:
			return ".*"
		}
	})
}

// selectorsAndGroupings parses a query with Prometheus' own parser and
// returns its series selectors and the labels each aggregation groups by,
// with the selectors under it.
func selectorsAndGroupings(expr parser.Expr) (selectors []*parser.VectorSelector, groupings map[*parser.AggregateExpr][]*parser.VectorSelector) {
	groupings = map[*parser.AggregateExpr][]*parser.VectorSelector{}
	parser.Inspect(expr, func(node parser.Node, path []parser.Node) error {
		selector, ok := node.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		selectors = append(selectors, selector)
		for _, parent := range path {
			if aggregate, ok := parent.(*parser.AggregateExpr); ok {
				groupings[aggregate] = append(groupings[aggregate], selector)
			}
		}
		return nil
	})
	return selectors, groupings
}

func metricName(selector *parser.VectorSelector) string {
	for _, m := range selector.LabelMatchers {
		if m.Name == labels.MetricName && m.Type == labels.MatchEqual {
			return m.Value
		}
	}
	return selector.Name
}

func TestEveryDashboardQueryParsesAsPromQL(t *testing.T) {
	for _, q := range dashboardQueries(t) {
		if q.parsed == nil {
			continue
		}
		selectors, _ := selectorsAndGroupings(q.parsed)
		if len(selectors) == 0 {
			t.Errorf("%s: %q selects no series", q.where, q.expr)
		}
		for _, s := range selectors {
			if metricName(s) == "" {
				t.Errorf("%s: %q selects series without naming a metric", q.where, s)
			}
		}
	}
}

// Every series a dashboard query selects is one the operator exports after
// the scenario of exportedSeries, with every label the query matches on,
// groups by or shows in its legend.
func TestTheDashboardQueriesOnlySeriesAndLabelsTheOperatorExports(t *testing.T) {
	exported := exportedSeries(t)
	for _, q := range dashboardQueries(t) {
		if q.parsed == nil {
			continue
		}
		selectors, groupings := selectorsAndGroupings(q.parsed)
		for _, s := range selectors {
			name := metricName(s)
			have, ok := exported[name]
			if !ok {
				t.Errorf("%s: %q selects %s, which the operator does not export", q.where, q.expr, name)
				continue
			}
			for _, m := range s.LabelMatchers {
				if m.Name != labels.MetricName && !have[m.Name] {
					t.Errorf("%s: %q matches label %s, which %s does not have (it has %v)", q.where, q.expr, m.Name, name, sortedKeys(have))
				}
			}
			for _, m := range legendLabel.FindAllStringSubmatch(q.legend, -1) {
				if !have[m[1]] {
					t.Errorf("%s: legend %q shows label %s, which %s does not have (it has %v)", q.where, q.legend, m[1], name, sortedKeys(have))
				}
			}
		}
		for aggregate, under := range groupings {
			if aggregate.Without {
				continue
			}
			for _, label := range aggregate.Grouping {
				for _, s := range under {
					if name := metricName(s); exported[name] != nil && !exported[name][label] {
						t.Errorf("%s: %q groups by %s, which %s does not have", q.where, q.expr, label, name)
					}
				}
			}
		}
	}
}

func sortedKeys(set map[string]bool) []string {
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
