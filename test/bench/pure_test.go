package main

import (
	"strings"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	// A command name with spaces and parentheses must not shift the fields.
	line := "4242 (kube (api) server) S 17 4242 4242 0 -1 4194560 900 0 0 0 1234 567 0 0 20 0 12 0 100 0 0"
	st, err := parseStat(line)
	if err != nil {
		t.Fatal(err)
	}
	if st.comm != "kube (api) server" || st.ppid != 17 || st.utime != 1234 || st.stime != 567 {
		t.Errorf("got %+v", st)
	}
	if _, err := parseStat("garbage"); err == nil {
		t.Error("want an error for a malformed line")
	}
}

func TestParseStatusMemory(t *testing.T) {
	status := "Name:\tmanager\nVmPeak:\t  900000 kB\nVmHWM:\t   81920 kB\nVmRSS:\t   40960 kB\nThreads:\t12\n"
	m, err := parseStatusMemory(strings.NewReader(status))
	if err != nil {
		t.Fatal(err)
	}
	if m.RSS != 40960*1024 || m.PeakRSS != 81920*1024 {
		t.Errorf("got %+v", m)
	}
}

func TestMix(t *testing.T) {
	for _, n := range []int{0, 1, 7, 10, 33, 1000} {
		plans, err := mix(n, retryMix)
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
		for _, s := range retryMix {
			// Largest remainder: the exact share rounded down or up.
			floor := n * s.Percent / 100
			if c := counts[s.Plan]; c != floor && c != floor+1 {
				t.Errorf("n=%d: %s got %d jobs, want %d or %d", n, s.Plan, c, floor, floor+1)
			}
		}
	}
	plans, _ := mix(1000, retryMix)
	again, _ := mix(1000, retryMix)
	for i := range plans {
		if plans[i] != again[i] {
			t.Fatal("the mix must be the same on every run")
		}
	}
	if _, err := mix(10, []Share{{PlanSucceed, 90}}); err == nil {
		t.Error("want an error when shares do not add up to 100")
	}
}

func TestPlanOutcomes(t *testing.T) {
	// Every plan must end as Expected says when the controller follows the retry budget.
	for _, p := range []Plan{PlanSucceed, PlanFlaky, PlanExhaust, PlanPermanent} {
		wantOK, wantAttempts := p.Expected(maxRetries)
		attempts, ok := 0, false
		for attempt := 1; attempt <= maxRetries+1; attempt++ {
			attempts = attempt
			o := p.Outcome(attempt)
			if o.Succeeded {
				ok = true
				break
			}
			if o.ExitCode == exitPermanent {
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

func ms(v ...int) []time.Duration {
	out := make([]time.Duration, len(v))
	for i, x := range v {
		out[i] = time.Duration(x) * time.Millisecond
	}
	return out
}

func TestPercentile(t *testing.T) {
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond
	}
	cases := []struct {
		samples []time.Duration
		p       float64
		want    time.Duration
	}{
		{nil, 50, 0},
		{ms(7), 99, 7 * time.Millisecond},
		{hundred, 50, 50 * time.Millisecond},
		{hundred, 99, 99 * time.Millisecond},
		{hundred, 100, 100 * time.Millisecond},
		{hundred, 0, 1 * time.Millisecond},
		{ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{ms(1, 2, 3, 4), 51, 3 * time.Millisecond},
	}
	for _, c := range cases {
		if got := percentile(c.samples, c.p); got != c.want {
			t.Errorf("p%g of %d samples = %s, want %s", c.p, len(c.samples), got, c.want)
		}
	}
}

func TestSummarize(t *testing.T) {
	s := summarize(ms(30, -5, 10, 20))
	if s.Count != 4 || s.Min != -5 || s.Max != 30 || s.P50 != 10 || s.P99 != 30 {
		t.Errorf("got %+v", s)
	}
	if (summarize(nil) != Summary{}) {
		t.Error("no samples, no summary")
	}
}

func TestHistogram(t *testing.T) {
	got := histogram(ms(-3, 0, 9, 10, 25, 1000), 0, 10*time.Millisecond, 3)
	want := []int{3, 1, 2} // -3 clamps into the first bucket, 1000 into the last
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
}

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
