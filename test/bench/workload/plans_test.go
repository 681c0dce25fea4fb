package workload

import (
	"strings"
	"testing"
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

func TestPlanOutcomes(t *testing.T) {
	// Every plan must end as Expected says when the controller follows the retry budget.
	for _, p := range []Plan{PlanSucceed, PlanFlaky, PlanExhaust, PlanPermanent} {
		wantOK, wantAttempts := p.Expected(MaxRetries)
		attempts, ok := 0, false
		for attempt := 1; attempt <= MaxRetries+1; attempt++ {
			attempts = attempt
			o := p.Outcome(attempt)
			if o.Succeeded {
				ok = true
				break
			}
			if o.ExitCode == ExitPermanent {
				break
			}
		}
		if ok != wantOK || attempts != wantAttempts {
			t.Errorf("%s: ran %d attempts, succeeded %v; Expected says %d, %v", p, attempts, ok, wantAttempts, wantOK)
		}
	}
	if o := PlanFlaky.Outcome(1); !strings.HasPrefix(o.Message, "ConnectionError: ") || o.ExitCode != 1 {
		t.Errorf("the retryable failure must follow the Pod contract: %+v", o)
	}
	if o := PlanPermanent.Outcome(1); !strings.HasPrefix(o.Message, "CorruptedFile: ") {
		t.Errorf("the permanent failure must follow the Pod contract: %+v", o)
	}
}
