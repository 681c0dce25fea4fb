package monitoring

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"sigs.k8s.io/yaml"
)

// prometheusRule is the part of config/prometheus/rules.yaml that Prometheus
// reads: the Prometheus Operator hands spec.groups to it as a rules file.
// The groups stay maps, so that every field of them reaches promtool.
type prometheusRule struct {
	Spec struct {
		Groups []map[string]any `json:"groups"`
	} `json:"spec"`
}

// ruleTests is the part of a promtool rule test file that says which alert
// each check expects.
type ruleTests struct {
	Tests []struct {
		Name          string `json:"name"`
		AlertRuleTest []struct {
			Alertname string `json:"alertname"`
			ExpAlerts []any  `json:"exp_alerts"`
		} `json:"alert_rule_test"`
	} `json:"tests"`
}

// rulesDir is a directory with spec.groups of the PrometheusRule as
// rules.yaml, the file the rule tests name, beside copies of the tests.
func rulesDir(t *testing.T) (dir string, tests []string) {
	t.Helper()
	var rule prometheusRule
	readYAML(t, repoPath("config", "prometheus", "rules.yaml"), &rule)
	groups, err := yaml.Marshal(map[string]any{"groups": rule.Spec.Groups})
	if err != nil {
		t.Fatal(err)
	}
	dir = t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), groups, 0o644); err != nil {
		t.Fatal(err)
	}
	sources, err := filepath.Glob(repoPath("config", "prometheus", "tests", "*.yaml"))
	if err != nil || len(sources) == 0 {
		t.Fatalf("no rule tests in config/prometheus/tests (%v)", err)
	}
	for _, source := range sources {
		content, err := os.ReadFile(source)
		if err != nil {
			t.Fatal(err)
		}
		copied := filepath.Join(dir, filepath.Base(source))
		if err := os.WriteFile(copied, content, 0o644); err != nil {
			t.Fatal(err)
		}
		tests = append(tests, copied)
	}
	return dir, tests
}

func readYAML(t *testing.T, path string, into any) {
	t.Helper()
	content, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(content, into); err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
}

func TestAlertingRulesPassPromtoolCheckRules(t *testing.T) {
	dir, _ := rulesDir(t)
	out, err := run(dir, nil, promtool, "check", "rules", "--lint=all", "--lint-fatal", "rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	t.Log(out)
}

func TestAlertingRulesPassTheirPromtoolTests(t *testing.T) {
	dir, tests := rulesDir(t)
	out, err := run(dir, nil, promtool, append([]string{"test", "rules"}, tests...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(out)
}

// A history that fires an alert, and one that does not, for every alert:
// promtool passes a test of an alert that no rule defines, and cannot tell
// that an alert has no test at all.
func TestEveryAlertHasAFiringAndAQuietRuleTest(t *testing.T) {
	var rule prometheusRule
	readYAML(t, repoPath("config", "prometheus", "rules.yaml"), &rule)
	var alerts []string
	for _, group := range rule.Spec.Groups {
		rules, _ := group["rules"].([]any)
		for _, r := range rules {
			if r, ok := r.(map[string]any); ok {
				if name, ok := r["alert"].(string); ok {
					alerts = append(alerts, name)
				}
			}
		}
	}
	if len(alerts) == 0 {
		t.Fatal("config/prometheus/rules.yaml defines no alert")
	}
	firing, quiet := map[string]bool{}, map[string]bool{}
	_, files := rulesDir(t)
	for _, file := range files {
		var tests ruleTests
		content, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.Unmarshal(content, &tests); err != nil {
			t.Fatalf("reading %s: %v", file, err)
		}
		for _, test := range tests.Tests {
			// An alert is quiet in a test when none of the test's checks of it expects it to fire.
			checked, fired := map[string]bool{}, map[string]bool{}
			for _, check := range test.AlertRuleTest {
				if !slices.Contains(alerts, check.Alertname) {
					t.Errorf("%s, %q: checks %s, which config/prometheus/rules.yaml does not define", filepath.Base(file), test.Name, check.Alertname)
				}
				checked[check.Alertname] = true
				if len(check.ExpAlerts) > 0 {
					fired[check.Alertname] = true
				}
			}
			for alert := range checked {
				if fired[alert] {
					firing[alert] = true
				} else {
					quiet[alert] = true
				}
			}
		}
	}
	for _, alert := range alerts {
		if !firing[alert] {
			t.Errorf("no rule test makes %s fire", alert)
		}
		if !quiet[alert] {
			t.Errorf("no rule test has a history in which %s must not fire", alert)
		}
	}
}
