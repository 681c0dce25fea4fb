package report

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pybase/extraction-operator/test/bench/config"
	"github.com/pybase/extraction-operator/test/bench/measure"
)

// throughputRun is a scenario-1 result of 1000 jobs.
func throughputRun(side, limits string, jobsPerSecond, requestsPerJob, apiServerCPUSeconds float64) *Result {
	res := &Result{Scenario: "throughput", Side: side, Limits: config.Limits{Name: limits}, Jobs: 1000, JobsPerSecond: jobsPerSecond}
	res.PerJob = measure.Breakdown{PodWrites: 2, Events: 2, StatusWrites: requestsPerJob - 4}
	res.Measurement.CPUSeconds = map[string]float64{"kube-apiserver": apiServerCPUSeconds}
	return res
}

func latencyRun(side string, rate, p50, p99 float64) *Result {
	return &Result{Scenario: "latency", Side: side, Rate: rate, StartLatency: &measure.Summary{P50: p50, P99: p99}}
}

func TestTheThroughputAndLatencyTargetsAreRatiosAgainstTheJobControllerInTheSameRun(t *testing.T) {
	r := &Report{
		Settings: &config.Settings{ThroughputLimits: []config.Limits{{Name: "equal"}, {Name: "off"}}, Rates: []float64{20, 50}},
		Results: []*Result{
			throughputRun("operator", "equal", 10.0, 5.0, 0), // 1.25× at 5 requests per job: both met
			throughputRun("job-controller", "equal", 8.0, 6.0, 0),
			throughputRun("operator", "off", 27.0, 5.0, 40), // 1.08×: missed; 40 ms against 50: 0.8×, met
			throughputRun("job-controller", "off", 25.0, 6.0, 50),
			latencyRun("operator", 20, 50, 190), // p99 190 against 180: missed
			latencyRun("job-controller", 20, 16, 180),
			latencyRun("operator", 50, 2900, 9000), // p50 2.9 s against 3.0 s: met, whatever the p99
			latencyRun("job-controller", 50, 3000, 5000),
		},
	}
	got := map[string]string{}
	for _, c := range append(r.throughputTargets(), r.latencyTargets()...) {
		got[c.name] = c.verdict
	}
	want := map[string]string{
		"≤ 5 requests per job (throughput, limits equal)":                                 "yes",
		"throughput ≥ 1.2× Job controller, limits equal":                                  "yes",
		"throughput ≥ 1.1× Job controller, limits off":                                    "**no**",
		"kube-apiserver CPU per job ≤ 0.9× the Job controller's (throughput, limits off)": "yes",
		"create → Pod p99 ≤ the Job controller's at 20 jobs/s":                            "**no**",
		"create → Pod p50 ≤ the Job controller's at 50 jobs/s":                            "yes",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("targets (-want +got):\n%s", diff)
	}
}
