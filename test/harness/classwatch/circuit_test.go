package classwatch

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
	"github.com/pybase/extraction-operator/test/harness/builders"
	"github.com/pybase/extraction-operator/test/harness/sim"
)

// Without an operator: the test opens the class's circuit by hand, runs two
// probes at once, and records a failure that ended while it was open as
// counted, and a parked one with a retry, and the Watch must see all three.
func TestWatchFindsRetriesSpentWhileTheCircuitIsOpenAndTooManyProbes(t *testing.T) {
	cp, cl := startControlPlane(t)
	ctx := context.Background()
	class := builders.ExtractorClass("breaker", "registry.example/x:1", builders.WithMaxRunning(5),
		builders.WithCircuitBreaker(ejv1.CircuitBreaker{ConsecutiveFailures: 3, Probes: 1}))
	if err := cl.Create(ctx, class); err != nil {
		t.Fatal(err)
	}
	w, err := Start(ctx, Options{Config: cp.Config(-1, 0), Class: class, Grace: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	now := metav1.Now()
	class.Status.Circuit = &ejv1.CircuitStatus{State: ejv1.CircuitOpen, Since: &now, ReopenAt: &now, OpenCount: 1}
	if err := cl.Status().Update(ctx, class); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)

	// Two jobs whose first attempts probe at once, and fail while the
	// circuit is open.
	jobs := map[string]*ejv1.ExtractionJob{}
	pods := map[string]*corev1.Pod{}
	for _, name := range []string{"counted", "parked"} {
		jobs[name] = builders.ExtractionJob("tenant", name, sim.Plan{}, builders.WithClass(class.Name))
		if err := cl.Create(ctx, jobs[name]); err != nil {
			t.Fatal(err)
		}
		pods[name] = builders.AttemptPod("tenant", name+"-1", jobs[name].UID, 1, nil, nil)
		pods[name].Labels[ejv1.ExtractorClassLabel] = class.Name
		pods[name].Labels[ejv1.CircuitProbeLabel] = "true"
		if err := cl.Create(ctx, pods[name]); err != nil {
			t.Fatal(err)
		}
	}
	for name, job := range jobs {
		pod := pods[name]
		pod.Status.Phase = corev1.PodFailed
		if err := cl.Status().Update(ctx, pod); err != nil {
			t.Fatal(err)
		}
		job.Status = ejv1.ExtractionJobStatus{
			Phase: ejv1.PhaseRetrying, ExtractorClassName: class.Name, Attempt: 1, RetryCount: 1,
			Attempts: []ejv1.AttemptRecord{{Attempt: 1, PodName: pod.Name, StartTime: now, FinishTime: &now,
				Outcome: ejv1.OutcomeFailed, ErrorType: "ServiceUnavailable", Parked: name == "parked"}},
		}
		if err := cl.Status().Update(ctx, job); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(time.Second)
	report := w.Stop()
	got := report.Circuit
	want := CircuitReport{Openings: 1, ProbesSeen: 2, PeakProbes: 2, Parked: 1, State: ejv1.CircuitOpen}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("circuit report (-want +got):\n%s", diff)
	}
	joined := strings.Join(report.Violations, "\n")
	for _, v := range []string{
		"2 probe Pods of ExtractorClass breaker in flight",
		"job tenant/counted: attempt 1 failed",
		"job tenant/parked: retryCount rose from 0 to 1",
	} {
		if !strings.Contains(joined, v) {
			t.Errorf("violations:\n%s\nwant one with %q", joined, v)
		}
	}
	if strings.Contains(joined, "tenant/parked: attempt 1") || strings.Contains(joined, "tenant/counted: retryCount") {
		t.Errorf("violations:\n%s\nwant none for the parked attempt's end or the counted attempt's retry", joined)
	}
}
