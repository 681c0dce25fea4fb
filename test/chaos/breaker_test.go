//go:build chaos

package chaos

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
	"github.com/pybase/extraction-operator/test/harness/builders"
	"github.com/pybase/extraction-operator/test/harness/classwatch"
	"github.com/pybase/extraction-operator/test/harness/sim"
)

// The breaker run's class: a circuit that opens after three
// ServiceUnavailable failures in a row, for 2 s doubling up to 8 s, lets one
// probe through and ramps up over 2 s, in front of at most five attempts.
const (
	breakerMaxRunning = 5
	breakerFailure    = "ServiceUnavailable: chaos: the extraction service answered 503"
)

var breakerSpec = ejv1.CircuitBreaker{
	ConsecutiveFailures: 3,
	OpenDuration:        &metav1.Duration{Duration: 2 * time.Second},
	MaxOpenDuration:     &metav1.Duration{Duration: 8 * time.Second},
	Probes:              1,
	RampUp:              &metav1.Duration{Duration: 2 * time.Second},
}

// The outage, as per-attempt lists: the plan grammar has no clock, and the
// simulated kubelet answers each attempt by its number, so "the service is
// down, then back" is each job's first attempts failing with
// ServiceUnavailable and its later ones succeeding. The first
// breakerMaxRunning jobs fail twice, so the first attempts that run open the
// circuit; the others mix one or two failures with jobs that never fail,
// whose successes reset the count. Every job must end Succeeded on the
// attempt its plan succeeds on, whatever was parked: maxRetries covers every
// failure even if none were parked.
var breakerMix = []struct {
	weight int
	plan   string
}{
	{4, "fail,ok"},
	{2, "fail,fail,ok"},
	{4, "ok"},
}

const breakerMaxRetries = 3

// breakerBound is how long after the circuit last closed (or after the last
// fault, when that came later) every job must be finished: the operator's
// restart and first pass, rampUp, and every job left running in turn under
// maxRunning, each attempt up to a second with its backoff.
func breakerBound(jobs int) time.Duration {
	rounds := (jobs + breakerMaxRunning - 1) / breakerMaxRunning
	return 20*time.Second + breakerSpec.RampUp.Duration + time.Duration(rounds)*2*time.Second
}

func newBreakerJobs(r *lockedRand, namespace, class string, n int) []*jobPlan {
	weights := make([]int, len(breakerMix))
	for i, m := range breakerMix {
		weights[i] = m.weight
	}
	jobs := make([]*jobPlan, 0, n)
	for i := range n {
		p := "fail,fail,ok"
		if i >= breakerMaxRunning {
			p = breakerMix[r.weighted(weights)].plan
		}
		j := &jobPlan{
			namespace: namespace, name: fmt.Sprintf("cb-%04d", i), plan: parsePlan(p),
			maxRetries: breakerMaxRetries, backoff: chaosBackoff, class: class, failure: breakerFailure,
		}
		j.expect = expect(j.plan, j.maxRetries, 0, j.backoff, false)
		jobs = append(jobs, j)
	}
	return jobs
}

// TestCircuitBreaker runs jobs through a class with a circuit breaker while
// the operator is SIGKILLed and the kube-apiserver restarted, and checks from
// the class's watch at every event that no retry is spent while the circuit
// is open and that no more probes run at once than the breaker allows, and
// at the end that nothing stayed stuck after the circuit last closed.
func TestCircuitBreaker(t *testing.T) {
	start := time.Now()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	name := "circuit-breaker"
	dir := filepath.Join(artifacts, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ns := newNamespace(t, "chaos-"+name)
	class := builders.ExtractorClass("chaos-"+name, chaosImage,
		builders.WithMaxRunning(breakerMaxRunning), builders.WithCircuitBreaker(breakerSpec))
	if err := admin.Create(ctx, class); err != nil {
		t.Fatalf("creating the class: %v", err)
	}
	r := &lockedRand{r: newRand(name)}
	run := &mixRun{
		t: t, name: name, namespace: ns, namespaces: []string{ns}, dir: dir, r: r, ctx: ctx, cancel: cancel,
		jobs: newBreakerJobs(r, ns, class.Name, prof.breakerJobs), started: start, class: class, capped: prof.breakerJobs,
	}
	var err error
	if run.classWatch, err = classwatch.Start(ctx, classwatch.Options{Config: cp.Config(200, 400), Class: class}); err != nil {
		t.Fatalf("watching the class: %v", err)
	}
	if run.obs, err = startObserver(ns); err != nil {
		t.Fatalf("starting the observer: %v", err)
	}
	t.Cleanup(run.obs.stop)
	if run.kubelet, err = startKubelet(ctx, run.obs, r); err != nil {
		t.Fatalf("starting the kubelet: %v", err)
	}

	op := run.startOperator()
	defer op.Kill()
	run.createJobs(2 * time.Second)

	// The kube-apiserver restart comes after the first kill, so that the
	// later kills find the circuit where the restart left it.
	var violations []violation
	kills, restarts := 0, 0
	for kills < prof.breakerKills {
		time.Sleep(r.duration(prof.killGapMin, prof.killGapMax))
		if err := op.Exited(); err != nil {
			violations = append(violations, violation{what: err.Error()})
		}
		run.operatorDown()
		op.Kill()
		kills++
		time.Sleep(r.duration(0, 1500*time.Millisecond))
		if err := op.Start(); err != nil {
			t.Fatal(err)
		}
		run.operatorUpWhenReady(op)
		if kills == 1 {
			time.Sleep(r.duration(500*time.Millisecond, 3*time.Second))
			restartFrom := time.Now()
			down, err := cp.RestartAPIServer(false, r.duration(0, 2*time.Second))
			if err != nil {
				t.Fatalf("restarting kube-apiserver: %v", err)
			}
			run.apiserverRestarted(restartFrom, time.Now(), down)
			restarts++
			t.Logf("kube-apiserver restart after kill %d: unavailable for %s", kills, down.Round(100*time.Millisecond))
		}
	}
	faultsDone := time.Now()
	t.Logf("%d kills and %d kube-apiserver restarts in %s; waiting for every job to finish", kills, restarts, faultsDone.Sub(start).Round(time.Second))

	stuck := run.waitFinished(faultsDone.Add(prof.converge))
	settled := time.Since(start)
	violations = append(violations, run.verifyBreaker(stuck, faultsDone)...)
	circuit, cv := run.checkBreakerClass()
	violations = append(violations, cv...)
	violations = append(violations, run.obs.takeViolations()...)
	violations = append(violations, quietCheck(prof.quiet, op.LogPath)...)
	if err := op.Exited(); err != nil {
		violations = append(violations, violation{what: err.Error()})
	}
	n := run.report(violations)
	summary("chaos circuit-breaker (%s): jobs: %d, pods: %d, kills: %d, apiserver restarts: %d, circuit openings seen: %d, probes seen: %d, peak probes in flight: %d (probes %d), parked attempts: %d, circuit last closed %s after the start, all finished after %s, duration %s, violations: %d",
		prof.name, len(run.jobs), run.obs.podCount(), kills, restarts, circuit.Openings, circuit.ProbesSeen, circuit.PeakProbes,
		breakerSpec.Probes, circuit.Parked, sinceStart(start, circuit.LastClosed), settled.Round(time.Second), time.Since(start).Round(time.Second), n)
}

func sinceStart(start, at time.Time) string {
	if at.IsZero() {
		return "never"
	}
	return at.Sub(start).Round(100 * time.Millisecond).String()
}

// verifyBreaker checks every job's end: Succeeded on the attempt its plan
// succeeds on, with a retry counted for each failed attempt that was not
// parked and none for the parked ones, and finished within breakerBound of
// the circuit's last closing or of the last fault.
func (m *mixRun) verifyBreaker(stuck []*jobPlan, faultsDone time.Time) []violation {
	out := m.harnessViolations()
	add := func(j *jobPlan, format string, args ...any) {
		out = append(out, violation{job: j.key(), what: fmt.Sprintf(format, args...)})
	}
	lastClosed := m.classWatch.Circuit().LastClosed
	from := faultsDone
	if lastClosed.After(from) {
		from = lastClosed
	}
	bound := breakerBound(len(m.jobs))
	stuckKeys := map[string]bool{}
	for _, j := range stuck {
		stuckKeys[j.key()] = true
	}
	for _, j := range m.jobs {
		job := &ejv1.ExtractionJob{}
		err := retryUntil(m.ctx, 20*time.Second, func(ctx context.Context) error {
			return admin.Get(ctx, client.ObjectKey{Namespace: j.namespace, Name: j.name}, job)
		})
		if err != nil {
			add(j, "not readable: %v", err)
			continue
		}
		st := job.Status
		if stuckKeys[j.key()] {
			add(j, "stuck: still %q %s after the circuit last closed (attempt %d, retryCount %d, message %q)",
				st.Phase, time.Since(lastClosed).Round(time.Second), st.Attempt, st.RetryCount, st.Message)
			continue
		}
		if st.Phase != j.expect.phase || st.Attempt != j.expect.attempts {
			add(j, "ended %s on attempt %d, want %s on attempt %d (plan %s)", st.Phase, st.Attempt, j.expect.phase, j.expect.attempts, j.plan)
		}
		counted := int32(0)
		for _, a := range st.Attempts {
			if a.Outcome == ejv1.OutcomeFailed && !a.Parked {
				counted++
			}
			if want := ejv1.OutcomeSucceeded; a.Attempt == st.Attempt && a.Outcome != want {
				add(j, "its last attempt %d is recorded %s, want %s", a.Attempt, a.Outcome, want)
			}
			if a.Parked && (a.Outcome != ejv1.OutcomeFailed || j.plan.at(int(a.Attempt)) != sim.Fail) {
				add(j, "attempt %d is recorded parked, but it %s (plan %s)", a.Attempt, a.Outcome, j.plan.at(int(a.Attempt)))
			}
		}
		if st.RetryCount != counted {
			add(j, "retryCount %d, want %d: one for each failed attempt that was not parked", st.RetryCount, counted)
		}
		if seen, ok := m.obs.jobSnapshot(j.key()); ok && seen.terminalAt.Sub(from) > bound {
			add(j, "finished %s after the circuit last closed or the last fault, more than %s",
				seen.terminalAt.Sub(from).Round(100*time.Millisecond), bound)
		}
	}
	return out
}

// checkBreakerClass stops the class's watch once every job finished: the
// circuit must end Closed, with no Pod and no probe left in flight, and what
// the watch found during the run counts.
func (m *mixRun) checkBreakerClass() (classwatch.CircuitReport, []violation) {
	report, out := m.stopClassWatch(func(class *ejv1.ExtractorClass) error {
		if c := class.Status.Circuit; c != nil && c.State != ejv1.CircuitClosed && c.State != "" {
			return fmt.Errorf("its circuit is %s (since %s, openCount %d)", c.State, c.Since, c.OpenCount)
		}
		return nil
	})
	if report.Circuit.Openings == 0 {
		out = append(out, violation{what: fmt.Sprintf("the watch never saw the circuit of ExtractorClass %s open: the run tested nothing", m.class.Name)})
	}
	if report.Circuit.State != ejv1.CircuitClosed {
		out = append(out, violation{what: fmt.Sprintf("the watch last saw the circuit of ExtractorClass %s %s", m.class.Name, report.Circuit.State)})
	}
	return report.Circuit, out
}
