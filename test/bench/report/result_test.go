package report

import "testing"

func TestEventsPerTransitionCountsTheContractsTransitions(t *testing.T) {
	// 2 jobs: one succeeds on its second attempt, one fails after 2 attempts.
	// Started ×4, failed attempt ×3, retry scheduled ×2, job failed ×1, job succeeded ×1: 11.
	res := &Result{Attempts: 4, Succeeded: 1}
	res.Measurement.Breakdown.Events = 11
	if got := res.EventsPerTransition(); got != 1 {
		t.Errorf("one event per transition gave %v, want 1", got)
	}
	res.Measurement.Breakdown.Events = 22
	if got := res.EventsPerTransition(); got != 2 {
		t.Errorf("two events per transition gave %v, want 2", got)
	}
	if got := (&Result{}).EventsPerTransition(); got != 0 {
		t.Errorf("no attempts gave %v, want 0", got)
	}
}
