package scenario

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
	"github.com/pybase/extraction-operator/test/bench/report"
	"github.com/pybase/extraction-operator/test/bench/workload"
	"github.com/pybase/extraction-operator/test/harness/sim"
)

func TestTheOutageBackendFailsTheClassesAttemptsThatEndInsideTheWindowAndKeepsItsFirstAnswer(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	b := newOutageBackend("outage", 4)
	b.schedule(at(10), 60*time.Second)
	planned := sim.Result{Phase: corev1.PodSucceeded, ContainerReason: sim.ReasonCompleted}
	pod := func(uid, class string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{UID: types.UID(uid), Labels: map[string]string{ejv1.ExtractorClassLabel: class}}}
	}
	got := map[string]sim.Result{
		"before":          b.finish(pod("a", "outage"), at(9.9), planned),
		"at the start":    b.finish(pod("b", "outage"), at(10), planned),
		"inside":          b.finish(pod("c", "outage"), at(69.9), planned),
		"at the end":      b.finish(pod("d", "outage"), at(70), planned),
		"another class":   b.finish(pod("e", "default"), at(30), planned),
		"retried, inside": b.finish(pod("a", "outage"), at(30), planned), // the write of a's end, retried
		"retried, after":  b.finish(pod("c", "outage"), at(71), planned),
	}
	want := map[string]sim.Result{
		"before": planned, "at the start": workload.ServiceUnavailable, "inside": workload.ServiceUnavailable,
		"at the end": planned, "another class": planned, "retried, inside": planned, "retried, after": workload.ServiceUnavailable,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
	if n := len(b.events); n != 4 {
		t.Errorf("%d attempt ends recorded, want 4: one per Pod of the class", n)
	}
}

func TestOutageFiguresCountTheDeadAttemptsThePeakJustAfterRecoveryAndOnePointPerSecond(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	start := func(ms int) attemptEvent { return attemptEvent{at: at(ms), delta: +1} }
	end := func(ms int, dead bool) attemptEvent { return attemptEvent{at: at(ms), delta: -1, dead: dead} }
	up := at(2000)
	events := []attemptEvent{
		start(100), start(200), end(1500, true), start(1500), // a slot handed over at 1.5 s: never 3 in flight
		end(1900, true),
		start(2500), start(2600), // 3 in flight after recovery
		end(2700, false), start(3000), // past the 1 s span: not counted
	}
	got := outageFiguresOf(events, t0, at(1000), up, time.Second)
	want := outageFigures{dead: 2, peakAfter: 3, startedAfter: 2, inFlightAtDown: 2, timeline: []report.OutagePoint{
		{At: 0, InFlight: 2, Last: 2, Started: 2},
		{At: 1, InFlight: 2, Last: 1, Started: 1, Dead: 2},
		{At: 2, InFlight: 3, Last: 2, Started: 2},
		{At: 3, InFlight: 3, Last: 3, Started: 1},
	}}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(outageFigures{})); diff != "" {
		t.Errorf("figures (-want +got):\n%s", diff)
	}
}

func TestTheRetrySpanRunsFromAJobsFirstDeadAttemptToItsLastAllowedOne(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	up := at(60)
	firstDeadEnd := map[string]time.Time{"early": at(1), "late": at(10), "never": at(50), "middle": at(5)}
	lastAttemptStart := map[string]time.Time{"early": at(55), "late": at(80), "middle": at(70), "unharmed": at(20)}
	want := report.RetrySpan{Jobs: 4, Reached: 3, StartedBeforeRecovery: 1, MinSeconds: 54, MedianSeconds: 65}
	if diff := cmp.Diff(want, retrySpanOf(firstDeadEnd, lastAttemptStart, up)); diff != "" {
		t.Errorf("retry span (-want +got):\n%s", diff)
	}
}
