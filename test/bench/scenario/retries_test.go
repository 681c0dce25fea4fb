package scenario

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestTheRetriesThatFellDueWhileTheOperatorWasDownAreSummarisedApart(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	retry := func(due, seen float64) RetrySeen { return RetrySeen{Due: at(due), Seen: at(seen)} }
	retries := []RetrySeen{
		retry(9.9, 10),   // due before the kill, on time
		retry(10, 16),    // due at the kill
		retry(14.5, 16),  // due while down
		retry(15, 15.05), // due at the start again, on time
		retry(20, 19.9),  // early
	}
	lateness, dueWhileDown, early := splitRetries(retries, at(10), at(15))
	want := struct{ Lateness, DueWhileDown []time.Duration }{
		Lateness:     []time.Duration{100 * time.Millisecond, 50 * time.Millisecond, -100 * time.Millisecond},
		DueWhileDown: []time.Duration{6 * time.Second, 1500 * time.Millisecond},
	}
	got := struct{ Lateness, DueWhileDown []time.Duration }{lateness, dueWhileDown}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b time.Duration) bool { return (a - b).Abs() < time.Microsecond })); diff != "" {
		t.Errorf("lateness (-want +got):\n%s", diff)
	}
	if early != 1 {
		t.Errorf("early = %d, want 1", early)
	}

	lateness, dueWhileDown, _ = splitRetries(retries, time.Time{}, time.Time{})
	if len(lateness) != len(retries) || len(dueWhileDown) != 0 {
		t.Errorf("without a restart: %d retries summarised, %d apart; want all %d together", len(lateness), len(dueWhileDown), len(retries))
	}
}
