package report

import (
	"encoding/json"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pybase/extraction-operator/test/bench/config"
	"github.com/pybase/extraction-operator/test/bench/measure"
)

// smallReport has one result of each scenario, and one that failed.
func smallReport() *Report {
	off := config.Limits{Name: "off", QPS: -1}
	s := &config.Settings{ThroughputLimits: []config.Limits{off}, ScaleN: 10, Rates: []float64{20}}
	return &Report{Settings: s, Results: []*Result{
		{Scenario: "throughput", Side: "operator", Limits: off, JobsPerSecond: 80, Jobs: 10, Attempts: 10,
			PerAttempt: measure.Breakdown{PodWrites: 1, StatusWrites: 2, Events: 1.5}},
		{Scenario: "throughput", Side: "job-controller", Limits: off, JobsPerSecond: 40, Jobs: 10, Attempts: 10,
			PerAttempt: measure.Breakdown{PodWrites: 2, StatusWrites: 3, OtherWrites: 0.25}},
		{Scenario: "retry-mix", Side: "operator", Limits: off, Lateness: &measure.Summary{P50: 20, P99: 90, Max: 700},
			LatenessMs: []float64{-1, 5, 24.9, 25, 90, 700}, PerAttempt: measure.Breakdown{PodWrites: 1, StatusWrites: 2.5}},
		{Scenario: "latency", Side: "operator", Limits: off, Rate: 20, StartLatency: &measure.Summary{P50: 10, P99: 40}},
		{Scenario: "latency", Side: "job-controller", Limits: off, Rate: 20, Error: "boom"},
		{Scenario: "scale", Side: "operator", Error: "boom"},
	}}
}

func TestReplotDrawsTheChartAndTheTableFromABenchJSONAndLeavesItAlone(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bench.json")
	raw, err := json.Marshal(smallReport())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Replot(path); err != nil {
		t.Fatal(err)
	}

	f, err := os.Open(filepath.Join(dir, "bench.png"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("bench.png is not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() != chartW || b.Dy() != 2*chartRowH {
		t.Errorf("bench.png is %dx%d, want %dx%d", b.Dx(), b.Dy(), chartW, 2*chartRowH)
	}
	table, err := os.ReadFile(filepath.Join(dir, "bench.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| operator | off | 80.0 |", "error: boom", "throughput ≥ 1.1× Job controller, limits off | 2.00× (80.0 against 40.0 jobs/s) | yes"} {
		if !strings.Contains(string(table), want) {
			t.Errorf("bench.md lacks %q:\n%s", want, table)
		}
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(raw), string(after)); diff != "" {
		t.Errorf("replot changed bench.json (-want +got):\n%s", diff)
	}
}

func TestReplotFailsOnAFileThatIsNotABenchJSON(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bench.json")
	if err := os.WriteFile(path, []byte("not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Replot(path); err == nil {
		t.Error("want an error for a file that is not JSON")
	}
}

// values is what a panel plots: each bar's label and its segments' values.
func values(p panel) map[string][]float64 {
	out := map[string][]float64{}
	for _, b := range p.bars {
		for _, s := range b.segments {
			out[b.label] = append(out[b.label], s.value)
		}
	}
	return out
}

func TestThePanelsPlotTheReportsFiguresAndLeaveFailedResultsOut(t *testing.T) {
	r := smallReport()
	cases := []struct {
		name  string
		panel panel
		want  map[string][]float64
	}{
		{"throughput: jobs per second", throughputPanel(r), map[string][]float64{
			"operator\noff": {80}, "job ctrl\noff": {40},
		}},
		{"writes: pod, status, other writes and events per attempt", writesPanel(r), map[string][]float64{
			"operator\ns1 off": {1, 2, 0, 1.5}, "job ctrl\ns1 off": {2, 3, 0.25, 0}, "operator\ns2 off": {1, 2.5, 0, 0},
		}},
		{"lateness: early retries, then 25 ms buckets with the last one open", latenessPanel(r), map[string][]float64{
			"early": {1}, "0": {2}, "25": {1}, "50": {0}, "75": {1}, "100": {0}, "125": {0}, "150": {0}, "175": {0},
			"200": {0}, "225": {0}, "250": {0}, "275": {0}, "300": {0}, "325": {0}, "350": {0}, "375+": {1},
		}},
		{"latency: p50 and p99 of each side and rate", latencyPanel(r), map[string][]float64{
			"operator\n20/s\np50": {10}, "operator\n20/s\np99": {40},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if diff := cmp.Diff(c.want, values(c.panel)); diff != "" {
				t.Errorf("plotted values (-want +got):\n%s", diff)
			}
			if _, err := c.panel.plot(); err != nil {
				t.Errorf("plotting: %v", err)
			}
		})
	}
	if note := latenessPanel(r).note; note != "p50 20 ms, p99 90 ms, max 700 ms, 1 early; target p99 250 ms" {
		t.Errorf("the lateness panel's note is %q", note)
	}
}

func TestAPanelWithNothingMeasuredStillPlots(t *testing.T) {
	p := latenessPanel(&Report{Settings: &config.Settings{}})
	if len(p.bars) != 0 {
		t.Fatalf("want no bars without a retry-mix result, got %d", len(p.bars))
	}
	pl, err := p.plot()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(pl.Title.Text, "not measured") {
		t.Errorf("the title %q does not say the panel was not measured", pl.Title.Text)
	}
}
