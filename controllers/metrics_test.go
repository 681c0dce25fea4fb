package controllers

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/yaml"
)

// registeredMetricNames are the names the operator's collectors describe.
func registeredMetricNames(t *testing.T) map[string]bool {
	t.Helper()
	descs := make(chan *prometheus.Desc, 64)
	for _, c := range operatorCollectors(nil) {
		c.Describe(descs)
	}
	close(descs)
	fqName := regexp.MustCompile(`fqName: "([^"]+)"`)
	names := map[string]bool{}
	for d := range descs {
		m := fqName.FindStringSubmatch(d.String())
		if m == nil {
			t.Fatalf("cannot read the name of %s", d)
		}
		names[m[1]] = true
	}
	return names
}

var metricReference = regexp.MustCompile(`extractionjob_[a-z_]+`)

// referencedMetrics lists the operator metrics a file names, without the
// _bucket, _sum and _count series suffixes.
func referencedMetrics(t *testing.T, path string) map[string]bool {
	t.Helper()
	content, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	switch filepath.Ext(path) {
	case ".json":
		var v any
		if err := json.Unmarshal(content, &v); err != nil {
			t.Fatalf("%s is not valid JSON: %v", path, err)
		}
	case ".yaml":
		var v any
		if err := yaml.Unmarshal(content, &v); err != nil {
			t.Fatalf("%s is not valid YAML: %v", path, err)
		}
	}
	names := map[string]bool{}
	for _, name := range metricReference.FindAllString(string(content), -1) {
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			name = strings.TrimSuffix(name, suffix)
		}
		names[name] = true
	}
	return names
}

func TestAlertsAndDashboardUseOnlyTheOperatorsMetrics(t *testing.T) {
	registered := registeredMetricNames(t)
	for _, path := range []string{
		filepath.Join("..", "config", "prometheus", "rules.yaml"),
		filepath.Join("..", "config", "grafana", "extractionjobs-dashboard.json"),
	} {
		referenced := referencedMetrics(t, path)
		if len(referenced) == 0 {
			t.Errorf("%s names no operator metric", path)
		}
		for name := range referenced {
			if !registered[name] {
				t.Errorf("%s uses %s, which the operator does not export", path, name)
			}
		}
	}
}

func TestTheDashboardShowsEveryMetric(t *testing.T) {
	shown := referencedMetrics(t, filepath.Join("..", "config", "grafana", "extractionjobs-dashboard.json"))
	for name := range registeredMetricNames(t) {
		if !shown[name] {
			t.Errorf("the dashboard does not show %s", name)
		}
	}
}

func TestUnknownErrorTypesShareOneMetricLabel(t *testing.T) {
	for errorType, want := range map[string]string{
		"ConnectionError": "ConnectionError", "OOMKilled": "OOMKilled", "": "",
		"MadeUpByAnExtractor": otherErrorType, "connectionerror": otherErrorType,
	} {
		if got := metricErrorType(errorType); got != want {
			t.Errorf("metricErrorType(%q) = %q, want %q", errorType, got, want)
		}
	}
}

func TestEachTransitionMetricNameNamesItsCollector(t *testing.T) {
	fqName := regexp.MustCompile(`fqName: "([^"]+)"`)
	for name, collector := range transitionMetrics {
		descs := make(chan *prometheus.Desc, 1)
		collector.Describe(descs)
		close(descs)
		for d := range descs {
			if m := fqName.FindStringSubmatch(d.String()); m == nil || m[1] != name {
				t.Errorf("transition metric %q describes itself as %s", name, d)
			}
		}
	}
}
