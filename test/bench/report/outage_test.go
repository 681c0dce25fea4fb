package report

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pybase/extraction-operator/test/bench/config"
)

func outageRun(breaker bool, lost, dead, failedProbeRounds, peak int) *Result {
	o := &OutageResult{Breaker: breaker, MaxRunning: 50, Lost: lost, DeadAttempts: dead, FailedProbeRounds: failedProbeRounds, PeakAfterRecovery: peak,
		Timeline: []OutagePoint{{At: 0, InFlight: 50, Started: 50}, {At: 1, InFlight: 50, Dead: 10}}}
	if breaker {
		o.ConsecutiveFailures, o.Probes = 5, 1
	}
	return &Result{Scenario: "outage", Side: "operator", Jobs: 500, Outage: o}
}

func TestOutageTargetsBoundTheBreakersRunByItsSettingsAndLeaveTheRunWithoutItUnjudged(t *testing.T) {
	for _, c := range []struct {
		name string
		run  *Result
		want map[string]string
	}{
		{"within every target", outageRun(true, 0, 57, 2, 50), map[string]string{
			"lost": "yes", "dead": "yes", "burst": "yes",
		}},
		{"one attempt too many against the dead backend, a job lost and a burst", outageRun(true, 1, 58, 2, 51), map[string]string{
			"lost": "**no**", "dead": "**no**", "burst": "**no**",
		}},
		{"the breaker off", outageRun(false, 300, 1200, 0, 50), map[string]string{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := &Report{Settings: &config.Settings{}, Results: []*Result{c.run}}
			short := map[string]string{
				"outage, breaker on: 0 jobs lost": "lost",
				"outage, breaker on: attempts against the dead backend ≤ consecutiveFailures + maxRunning + probes × failed probe rounds": "dead",
				"outage, breaker on: no burst above maxRunning after recovery":                                                            "burst",
			}
			got := map[string]string{}
			for _, check := range r.outageTargets() {
				got[short[check.name]] = check.verdict
			}
			if diff := cmp.Diff(c.want, got); diff != "" {
				t.Errorf("verdicts (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTheOutageChartDrawsEveryRun(t *testing.T) {
	r := &Report{Settings: &config.Settings{}, Results: []*Result{outageRun(false, 300, 1200, 0, 50), outageRun(true, 0, 57, 2, 50)}}
	png, err := renderOutageChart(r)
	if err != nil {
		t.Fatal(err)
	}
	if len(png) < 1000 {
		t.Errorf("the chart is %d bytes", len(png))
	}
}
