package report

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pybase/extraction-operator/test/bench/config"
	"github.com/pybase/extraction-operator/test/bench/measure"
)

// queueRun is a queue result of jobs jobs with the given writes per job and
// controller CPU seconds.
func queueRun(jobs, maxRunning, peak, waited int, statusWrites, cpuSeconds float64) *Result {
	res := &Result{Scenario: "queue", Side: "operator", Jobs: jobs, Queue: &QueueResult{
		MaxRunning: maxRunning, PeakInFlight: peak, Waited: waited,
		SlotTaken: &measure.Summary{Count: waited, P50: 30, P99: 90},
		Paths:     map[string]int{" → Queued/Queued → Pending/Pending": waited, " → Pending/Pending": jobs - waited},
	}}
	res.PerJob = measure.Breakdown{PodWrites: 2, StatusWrites: statusWrites, Events: 2}
	res.Measurement.CPUSeconds = map[string]float64{"controller": cpuSeconds}
	return res
}

func TestQueueTargetsCheckTheCapTheFreedSlotsTheWritesAgainstTheUncappedRunAndTheCPUPerJob(t *testing.T) {
	r := &Report{Settings: &config.Settings{}, Results: []*Result{
		queueRun(1000, 50, 50, 950, 3.95, 8),    // 0.95 more writes per job, 950 of 1000 waited: allowed
		queueRun(10000, 50, 51, 9000, 4.0, 100), // 1.0 more, 9000 of 10000 waited: too many; 10 ms/job against 8
		queueRun(10000, 0, 400, 0, 3.0, 50),
	}}
	got := map[string]string{}
	for _, c := range r.queueTargets() {
		got[c.name] = c.verdict
	}
	want := map[string]string{
		"peak in flight ≤ maxRunning (1000 jobs, maxRunning 50)":                                           "yes",
		"slot freed → next Pod created p99 ≤ 100 ms (1000 jobs, maxRunning 50)":                            "yes",
		"≤ 1 more write per job than uncapped, only for jobs that waited (1000 jobs, maxRunning 50)":       "yes",
		"writes while Queued per job that waited, from the jobs' watch events (1000 jobs, maxRunning 50)":  "yes",
		"peak in flight ≤ maxRunning (10000 jobs, maxRunning 50)":                                          "**no**",
		"slot freed → next Pod created p99 ≤ 100 ms (10000 jobs, maxRunning 50)":                           "yes",
		"≤ 1 more write per job than uncapped, only for jobs that waited (10000 jobs, maxRunning 50)":      "**no**",
		"writes while Queued per job that waited, from the jobs' watch events (10000 jobs, maxRunning 50)": "yes",
		"operator CPU per job within 1.2× at 1000 and 10000 queued":                                        "**no**",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("queue targets (-want +got):\n%s", diff)
	}
}

func TestTheQueuePanelPlotsTheFreedSlotTimesOfTheCappedRunsOnly(t *testing.T) {
	r := &Report{Settings: &config.Settings{}, Results: []*Result{queueRun(1000, 50, 50, 950, 3.95, 8), queueRun(1000, 0, 400, 0, 3.0, 5)}}
	want := map[string][]float64{"1000 jobs\nmax 50\np50": {30}, "1000 jobs\nmax 50\np99": {90}}
	if diff := cmp.Diff(want, values(queuePanel(r))); diff != "" {
		t.Errorf("plotted values (-want +got):\n%s", diff)
	}
	if panels := chartPanels(r); len(panels) != 1 {
		t.Errorf("a report of the queue alone draws %d panels, want its own alone", len(panels))
	}
}
