package controllers

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
)

// sighting is an attempt a tally sees: its Pod, when it finished (seconds
// after circuitEpoch) and what it says about the service.
type sighting struct {
	pod      string
	finished int
	signal   circuitSignal
}

func failed(pod string, finished int) sighting    { return sighting{pod, finished, signalServiceDown} }
func succeeded(pod string, finished int) sighting { return sighting{pod, finished, signalServiceUp} }

func (s sighting) attempt() finishedAttempt {
	a := finishedAttempt{pod: types.UID(s.pod), finishedAt: circuitEpoch.Add(time.Duration(s.finished) * time.Second),
		outcome: circuitOutcome{signal: s.signal}}
	if s.signal == signalServiceDown {
		a.outcome.errorType, a.outcome.message = "ServiceUnavailable", "503 from "+s.pod
	}
	return a
}

func TestCircuitTallyCountsInTheOrderTheAttemptsFinished(t *testing.T) {
	policy := testCircuitPolicy()
	policy.threshold = 3
	now := circuitEpoch.Add(time.Minute)
	lastDown := func(pod string) circuitOutcome {
		return circuitOutcome{signal: signalServiceDown, errorType: "ServiceUnavailable", message: "503 from " + pod}
	}
	cases := []struct {
		name string
		// closedSince is when the circuit last closed, in seconds after circuitEpoch.
		closedSince int
		seen        []sighting
		// wantRun is how many failures are in the run after the last sighting.
		wantRun     int
		wantOpening *circuitOpening
	}{
		{name: "three failures in a row reach the threshold",
			seen:        []sighting{failed("a", 1), failed("b", 2), failed("c", 3)},
			wantOpening: &circuitOpening{at: now, last: lastDown("c")}},
		{name: "failures seen out of the order they finished reach it too, the last to finish on the circuit",
			seen:        []sighting{failed("c", 3), failed("a", 1), failed("b", 2)},
			wantOpening: &circuitOpening{at: now, last: lastDown("c")}},
		{name: "a late-seen success from before the outage leaves the failures after it in the run",
			seen:        []sighting{failed("a", 2), failed("b", 3), succeeded("early", 1), failed("c", 4)},
			wantOpening: &circuitOpening{at: now, last: lastDown("c")}},
		{name: "a success resets the failures that finished before it, however late it is seen",
			seen:    []sighting{failed("a", 1), failed("d", 5), succeeded("ok", 3), failed("e", 6)},
			wantRun: 2},
		{name: "a success seen after failures that finished later keeps them in the run",
			seen:        []sighting{failed("a", 4), failed("b", 5), succeeded("ok", 3), failed("c", 6)},
			wantOpening: &circuitOpening{at: now, last: lastDown("c")}},
		{name: "a success from before the last one changes nothing",
			seen:    []sighting{succeeded("ok", 3), failed("a", 4), succeeded("older", 2), failed("b", 5)},
			wantRun: 2},
		{name: "a failure of another type, which is the service answering, resets the run",
			seen:    []sighting{failed("a", 1), failed("b", 2), {"corrupt", 3, signalServiceUp}, failed("c", 4)},
			wantRun: 1},
		{name: "a failure the operator derived from the Pod neither counts nor resets",
			seen:        []sighting{failed("a", 1), failed("b", 2), {"oom", 3, signalNone}, failed("c", 4)},
			wantOpening: &circuitOpening{at: now, last: lastDown("c")}},
		{name: "an attempt seen twice counts once",
			seen:    []sighting{failed("a", 1), failed("a", 1), failed("b", 2)},
			wantRun: 2},
		{name: "a success seen twice resets once: failures seen between the sightings stay",
			seen:        []sighting{succeeded("ok", 2), failed("a", 2), succeeded("ok", 2), failed("b", 3), failed("c", 4)},
			wantOpening: &circuitOpening{at: now, last: lastDown("c")}},
		{name: "attempts that finished in the same second are in the order seen: failures seen after the success count",
			seen:        []sighting{succeeded("ok", 2), failed("a", 2), failed("b", 2), failed("c", 3)},
			wantOpening: &circuitOpening{at: now, last: lastDown("c")}},
		{name: "attempts that finished in the same second are in the order seen: failures seen before the success do not",
			seen:    []sighting{failed("a", 2), failed("b", 2), succeeded("ok", 2), failed("c", 3)},
			wantRun: 1},
		{name: "failures that finished before the circuit last closed are not counted", closedSince: 10,
			seen:    []sighting{failed("a", 5), failed("b", 9), failed("c", 11)},
			wantRun: 1},
		{name: "once the threshold is reached nothing more is counted",
			seen:        []sighting{failed("a", 1), failed("b", 2), failed("c", 3), failed("d", 4), succeeded("ok", 5)},
			wantOpening: &circuitOpening{at: now, last: lastDown("c")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tally := newCircuitTally(circuitEpoch.Add(time.Duration(tc.closedSince) * time.Second))
			reachedAt := -1
			for i, s := range tc.seen {
				if tally.record(policy, s.attempt(), now) {
					if reachedAt >= 0 {
						t.Errorf("the threshold was reached twice, at sightings %d and %d", reachedAt, i)
					}
					reachedAt = i
				}
			}
			if diff := cmp.Diff(tc.wantOpening, tally.pending, cmp.AllowUnexported(circuitOpening{}, circuitOutcome{})); diff != "" {
				t.Errorf("opening (-want +got):\n%s", diff)
			}
			if got := len(tally.failures); got != tc.wantRun {
				t.Errorf("%d failures in the run, want %d", got, tc.wantRun)
			}
		})
	}
}

func TestCircuitTallyOpeningWaitsForTheLargestHint(t *testing.T) {
	policy := testCircuitPolicy()
	policy.threshold = 2
	hinted := func(s sighting, d time.Duration) finishedAttempt {
		a := s.attempt()
		a.outcome.retryAfter = d
		return a
	}
	tally := newCircuitTally(time.Time{})
	tally.record(policy, hinted(failed("a", 2), 40*time.Second), circuitEpoch)
	tally.record(policy, hinted(failed("b", 1), 5*time.Second), circuitEpoch)
	want := &circuitOpening{at: circuitEpoch, last: hinted(failed("a", 2), 40*time.Second).outcome, largestRetryAfter: 40 * time.Second}
	if diff := cmp.Diff(want, tally.pending, cmp.AllowUnexported(circuitOpening{}, circuitOutcome{})); diff != "" {
		t.Errorf("opening (-want +got):\n%s", diff)
	}
	opened := policy.openedBy(nil, *tally.pending)
	if got := opened.ReopenAt.Sub(opened.Since.Time); got != 40*time.Second {
		t.Errorf("the circuit reopens after %v, want the largest hint, 40s", got)
	}
}

// finishedPod is an attempt Pod of class api that finished at circuitEpoch +
// finished seconds: Failed with the message, or Succeeded without one.
func finishedPod(name string, finished int, message string) *corev1.Pod {
	phase, exitCode, reason := corev1.PodSucceeded, int32(0), "Completed"
	if message != "" {
		phase, exitCode, reason = corev1.PodFailed, 69, "Error"
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, UID: types.UID(name), Labels: map[string]string{ejv1.ExtractorClassLabel: "api"}},
		Status: corev1.PodStatus{Phase: phase, ContainerStatuses: []corev1.ContainerStatus{{Name: extractorContainerName,
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: exitCode, Reason: reason, Message: message,
				FinishedAt: metav1.NewTime(circuitEpoch.Add(time.Duration(finished) * time.Second))}}}}},
	}
}

func TestAFinishedPodSaysWhatTheBreakerCounts(t *testing.T) {
	policy := testCircuitPolicy()
	oom := finishedPod("oom", 4, "ServiceUnavailable: said before the kill")
	oom.Status.ContainerStatuses[0].State.Terminated.Reason = containerReasonOOMKilled
	running := finishedPod("running", 0, "")
	running.Status = corev1.PodStatus{Phase: corev1.PodRunning}
	noFinish := finishedPod("no-finish", 0, "")
	noFinish.Status.ContainerStatuses = nil
	cases := []struct {
		name         string
		pod          *corev1.Pod
		want         finishedAttempt
		wantFinished bool
	}{
		{"a success says the service answered, when its container finished", finishedPod("ok", 3, ""),
			finishedAttempt{pod: "ok", finishedAt: circuitEpoch.Add(3 * time.Second), outcome: circuitOutcome{signal: signalServiceUp}}, true},
		{"a reported ServiceUnavailable says the service is down, with its hint",
			finishedPod("down", 2, "ServiceUnavailable: 503\nRetry-After: 30"),
			finishedAttempt{pod: "down", finishedAt: circuitEpoch.Add(2 * time.Second), outcome: circuitOutcome{signal: signalServiceDown,
				errorType: "ServiceUnavailable", message: "503", retryAfter: 30 * time.Second}}, true},
		{"an OOMKilled attempt says nothing", oom,
			finishedAttempt{pod: "oom", finishedAt: circuitEpoch.Add(4 * time.Second), outcome: circuitOutcome{signal: signalNone,
				errorType: ejv1.ErrorTypeOOMKilled, message: "The extractor ran out of memory."}}, true},
		{"a Pod without a container status finished at an unknown time", noFinish,
			finishedAttempt{pod: "no-finish", outcome: circuitOutcome{signal: signalServiceUp}}, true},
		{"a running Pod has not finished", running, finishedAttempt{}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, finished := policy.finishedAttemptOf(tc.pod)
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(finishedAttempt{}, circuitOutcome{})); diff != "" || finished != tc.wantFinished {
				t.Errorf("finished %v, want %v (-want +got):\n%s", finished, tc.wantFinished, diff)
			}
		})
	}
}

// tallyClass is class api with a breaker of threshold failures and the circuit.
func tallyClass(threshold int32, circuit *ejv1.CircuitStatus) *ejv1.ExtractorClass {
	class := breakerClassIn(circuit)
	class.Spec.CircuitBreaker.ConsecutiveFailures = threshold
	return class
}

// addRecorder records what is added to it, as a controller's work queue.
type addRecorder struct {
	workqueue.TypedRateLimitingInterface[reconcile.Request]
	added []reconcile.Request
}

func (r *addRecorder) Add(item reconcile.Request) { r.added = append(r.added, item) }

func TestCircuitTalliesFollowTheClassesCircuit(t *testing.T) {
	clock := clocktesting.NewFakeClock(circuitEpoch.Add(time.Minute))
	tallies := newCircuitTallies(clock)
	openings := &addRecorder{}
	tallies.wakeOpeningsOn(openings)
	closed := tallyClass(2, &ejv1.CircuitStatus{State: ejv1.CircuitClosed, Since: circuitAt(10 * time.Second)})

	tallies.observe(closed, finishedPod("a", 20, serviceUnavailable))
	if tallies.pending(closed) != nil || len(openings.added) != 0 {
		t.Fatalf("one failure of two: pending %+v, woke %v", tallies.pending(closed), openings.added)
	}
	stale := tallyClass(2, &ejv1.CircuitStatus{State: ejv1.CircuitClosed, Since: circuitAt(0)})
	tallies.observe(stale, finishedPod("stale", 21, serviceUnavailable))
	if tallies.pending(closed) != nil {
		t.Errorf("a class read before its circuit last closed counted a failure")
	}

	tallies.observe(closed, finishedPod("b", 21, serviceUnavailable))
	opening := tallies.pending(closed)
	if opening == nil || !opening.at.Equal(clock.Now()) {
		t.Fatalf("two failures of two: pending %+v, want an opening at %v", opening, clock.Now())
	}
	if want := []reconcile.Request{{NamespacedName: types.NamespacedName{Name: "api"}}}; !cmp.Equal(want, openings.added) {
		t.Errorf("the opening woke %v, want the class's reconcile", openings.added)
	}

	open := tallyClass(2, openCircuit(time.Minute, 2*time.Minute, 1))
	if got := tallies.pending(open); got != nil {
		t.Errorf("the class's status shows the circuit open, and the opening is still pending: %+v", got)
	}
	tallies.observe(open, finishedPod("straggler", 61, serviceUnavailable))

	clock.Step(2 * time.Minute)
	reclosed := tallyClass(2, &ejv1.CircuitStatus{State: ejv1.CircuitClosed, Since: circuitAt(3 * time.Minute)})
	if got := tallies.pending(reclosed); got != nil {
		t.Errorf("the opening of the previous closed circuit applies to the new one: %+v", got)
	}
	tallies.observe(reclosed, finishedPod("c", 181, serviceUnavailable))
	if got := tallies.pending(reclosed); got != nil {
		t.Errorf("the straggler that failed while the circuit was open counted for the new closed circuit: %+v", got)
	}

	// The class is deleted while the count is below the threshold; one of the same name is created.
	tallies.forget("api")
	tallies.observe(reclosed, finishedPod("d", 182, serviceUnavailable))
	if got := tallies.pending(reclosed); got != nil {
		t.Errorf("the deleted class's count opened the new class's circuit: %+v", got)
	}
	if state := circuitState(nil, circuitEpoch); state != ejv1.CircuitClosed {
		t.Errorf("a new class's circuit is %s, want Closed", state)
	}
}

func TestTheQueueAdmitsNothingOnceTheThresholdIsReached(t *testing.T) {
	class := tallyClass(5, &ejv1.CircuitStatus{State: ejv1.CircuitClosed})
	class.Spec.MaxRunning = ptr.To[int32](5)
	objects := []client.Object{class}
	var running []*corev1.Pod
	for i := range 5 {
		pod := finishedPod(fmt.Sprintf("p%d", i), 0, "")
		pod.Status = corev1.PodStatus{Phase: corev1.PodRunning}
		running = append(running, pod)
		objects = append(objects, pod)
	}
	var waiting []*ejv1.ExtractionJob
	for i := range 5 {
		job := admissionTestJob("ns", fmt.Sprintf("job-%d", i), i, ejv1.PhaseQueued)
		job.Status.ExtractorClassName = "api"
		waiting = append(waiting, job)
		objects = append(objects, job)
	}
	ctx := context.Background()
	q := newAdmissionQueue(fakeAdmissionCache(objects...), clocktesting.NewFakeClock(circuitEpoch.Add(time.Minute)))
	cache := q.reader.(client.WithWatch)

	// The five running attempts fail one after the other, and the cache shows each.
	for i, pod := range running {
		failedPod := finishedPod(pod.Name, 10+i, serviceUnavailable)
		failedPod.ResourceVersion = ""
		current := &corev1.Pod{}
		if err := cache.Get(ctx, client.ObjectKeyFromObject(pod), current); err != nil {
			t.Fatal(err)
		}
		current.Status = failedPod.Status
		if err := cache.Status().Update(ctx, current); err != nil {
			t.Fatal(err)
		}
		wq := &recordingQueue{added: map[reconcile.Request]int{}}
		q.podSeen(ctx, wq, pod, current)
		if i < 4 && len(wq.added) != i+1 {
			t.Errorf("failure %d woke %v, want the %d heads of the queue for the slots freed", i+1, wq.added, i+1)
		}
		if i == 4 && len(wq.added) != 0 {
			t.Errorf("the fifth failure in a row woke %v, want none: the circuit opens", wq.added)
		}
	}
	// The class's status still shows the circuit closed.
	if got := mustAdmit(t, q, waiting[4], class); got != (admissionVerdict{CircuitOpen: true}) {
		t.Errorf("a job asking after the fifth failure, before the class's status says open: verdict %+v, want refused for the circuit", got)
	}
}
