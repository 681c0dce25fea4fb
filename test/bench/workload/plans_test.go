package workload

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	"github.com/pybase/extraction-operator/test/harness/sim"
)

func TestMix(t *testing.T) {
	for _, n := range []int{0, 1, 7, 10, 33, 1000} {
		plans, err := Mix(n, RetryMix)
		if err != nil {
			t.Fatal(err)
		}
		if len(plans) != n {
			t.Fatalf("n=%d: got %d plans", n, len(plans))
		}
		counts := map[Plan]int{}
		for _, p := range plans {
			counts[p]++
		}
		for _, s := range RetryMix {
			// Largest remainder: the exact share rounded down or up.
			floor := n * s.Percent / 100
			if c := counts[s.Plan]; c != floor && c != floor+1 {
				t.Errorf("n=%d: %s got %d jobs, want %d or %d", n, s.Plan, c, floor, floor+1)
			}
		}
	}
	plans, _ := Mix(1000, RetryMix)
	again, _ := Mix(1000, RetryMix)
	for i := range plans {
		if plans[i] != again[i] {
			t.Fatal("the mix must be the same on every run")
		}
	}
	if _, err := Mix(10, []Share{{PlanSucceed, 90}}); err == nil {
		t.Error("want an error when shares do not add up to 100")
	}
}

// played is how the simulated kubelet plays a plan's attempt, read back
// from the annotations of the jobs' Pod templates as the kubelet reads them
// from the Pods: the ExtractionJob's and the batch/v1 Job's must agree.
func played(t *testing.T, p Plan, attempt int) sim.Result {
	t.Helper()
	fromJob, err := sim.ParsePlan(ExtractionJob("j", p).Spec.PodTemplate.Metadata.Annotations)
	if err != nil {
		t.Fatalf("%s: the ExtractionJob's annotations: %v", p, err)
	}
	fromBatch, err := sim.ParsePlan(BatchJob("j", p).Spec.Template.Annotations)
	if err != nil {
		t.Fatalf("%s: the batch/v1 Job's annotations: %v", p, err)
	}
	got, batch := fromJob.Attempt(attempt, nil).Result, fromBatch.Attempt(attempt, nil).Result
	if diff := cmp.Diff(got, batch); diff != "" {
		t.Fatalf("%s, attempt %d: the two sides' Pods end differently (-ExtractionJob +Job):\n%s", p, attempt, diff)
	}
	return got
}

func TestPlanOutcomes(t *testing.T) {
	// Every plan must end as Expected says when the controller follows the retry budget.
	for _, p := range []Plan{PlanSucceed, PlanFlaky, PlanExhaust, PlanPermanent} {
		wantOK, wantAttempts := p.Expected(MaxRetries)
		attempts, ok := 0, false
		for attempt := 1; attempt <= MaxRetries+1; attempt++ {
			attempts = attempt
			o := played(t, p, attempt)
			if o.Phase == corev1.PodSucceeded {
				ok = true
				break
			}
			if o.ExitCode == sim.PermanentExitCode {
				break
			}
		}
		if ok != wantOK || attempts != wantAttempts {
			t.Errorf("%s: ran %d attempts, succeeded %v; Expected says %d, %v", p, attempts, ok, wantAttempts, wantOK)
		}
	}
	if o := played(t, PlanFlaky, 1); !strings.HasPrefix(o.ContainerMessage, "ConnectionError: ") || o.ExitCode != 1 {
		t.Errorf("the retryable failure must follow the Pod contract: %+v", o)
	}
	if o := played(t, PlanPermanent, 1); !strings.HasPrefix(o.ContainerMessage, "CorruptedFile: ") {
		t.Errorf("the permanent failure must follow the Pod contract: %+v", o)
	}
}
