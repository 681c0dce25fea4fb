//go:build chaos

package chaos

import (
	"context"
	"fmt"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
	"github.com/pybase/extraction-operator/test/harness/builders"
	"github.com/pybase/extraction-operator/test/harness/classwatch"
	"github.com/pybase/extraction-operator/test/harness/operator"
)

// Every mix run puts a share of its jobs in a capped class of its own,
// spread over the run's namespace and a tenant namespace, so that both caps
// bind: two namespaces at maxRunningPerNamespace would exceed maxRunning.
const (
	cappedMaxRunning      = 5
	cappedMaxPerNamespace = 3
	// cappedEvery: every third job of the mix runs in the capped class.
	cappedEvery = 3
)

// restartSettle is how long after its workers start (or after the
// kube-apiserver is back) the operator is excused, on top of the watch's
// grace: its first pass reconciles every job of the run, a few hundred, and
// a queue head waits its turn in that pass like any other job.
const restartSettle = 3 * time.Second

// operatorOptions let a run see when an operator incarnation's workers start.
var operatorOptions = operator.Options{Markers: []string{operator.JobWorkersStarted}}

// startCappedClass creates the run's capped class and tenant namespace,
// moves every cappedEvery-th job into the class (alternating namespaces) and
// starts the watch that checks the cap.
func (m *mixRun) startCappedClass() {
	m.t.Helper()
	ctx := context.Background()
	m.namespaces = append(m.namespaces, newNamespace(m.t, "chaos-"+m.name+"-tenant"))
	m.class = builders.ExtractorClass("chaos-"+m.name+"-capped", chaosImage,
		builders.WithMaxRunning(cappedMaxRunning), builders.WithMaxRunningPerNamespace(cappedMaxPerNamespace))
	if err := admin.Create(ctx, m.class); err != nil {
		m.t.Fatalf("creating the capped class: %v", err)
	}
	for i, j := range m.jobs {
		if i%cappedEvery != 0 {
			continue
		}
		j.class = m.class.Name
		j.namespace = m.namespaces[(i/cappedEvery)%2]
		m.capped++
	}
	var err error
	if m.classWatch, err = classwatch.Start(ctx, classwatch.Options{Config: cp.Config(200, 400), Class: m.class}); err != nil {
		m.t.Fatalf("watching the capped class: %v", err)
	}
}

// stopClassWatch stops the class's watch once every job finished and
// returns its report, with the violations it found and those of the
// class's own status: nothing runs and nothing waits, so no slot leaked;
// classDone, when set, adds what else the class's final status must show.
func (m *mixRun) stopClassWatch(classDone func(*ejv1.ExtractorClass) error) (classwatch.Report, []violation) {
	var out []violation
	class := &ejv1.ExtractorClass{}
	// The class status is written at most every 5 s.
	err := retryUntil(context.Background(), 20*time.Second, func(ctx context.Context) error {
		if err := admin.Get(ctx, client.ObjectKeyFromObject(m.class), class); err != nil {
			return err
		}
		if class.Status.Running != 0 || class.Status.Queued != 0 {
			return fmt.Errorf("status says running %d, queued %d", class.Status.Running, class.Status.Queued)
		}
		if classDone != nil {
			return classDone(class)
		}
		return nil
	})
	if err != nil {
		out = append(out, violation{what: fmt.Sprintf("ExtractorClass %s after every job finished: %v", m.class.Name, err)})
	}
	inFlight := m.classWatch.InFlight()
	report := m.classWatch.Stop()
	if inFlight != 0 {
		out = append(out, violation{what: fmt.Sprintf("%d Pods of ExtractorClass %s still in flight after every job finished", inFlight, m.class.Name)})
	}
	for _, v := range report.Violations {
		out = append(out, violation{what: v})
	}
	return report, out
}

// startOperator starts the run's operator process and tells the class's
// watch when its workers run.
func (m *mixRun) startOperator() *operator.Process {
	m.t.Helper()
	op, err := operator.New(m.dir, "operator", append([]string{manager}, operatorArgs()...), operatorOptions)
	if err != nil {
		m.t.Fatal(err)
	}
	m.operatorLogs = []string{op.LogPath}
	m.operatorDown()
	if err := op.Start(); err != nil {
		m.t.Fatal(err)
	}
	m.operatorUpWhenReady(op)
	return op
}

// operatorDown excuses the queue from now until an operator's workers run
// again (operatorUpWhenReady).
func (m *mixRun) operatorDown() { m.classWatch.OperatorDown() }

// operatorUpWhenReady ends the excuse restartSettle after p's workers
// start, in the background: the faults keep their timing.
func (m *mixRun) operatorUpWhenReady(p *operator.Process) {
	go func() {
		if at, err := p.WaitMarker(m.ctx, operator.JobWorkersStarted, 2*time.Minute); err == nil {
			m.classWatch.OperatorUp(at.Add(restartSettle))
		}
	}()
}

// apiserverRestarted excuses the queue while the kube-apiserver was away
// (for down), and after it came back for as long as the operator's
// informers may take to notice, plus restartSettle. client-go's reflector
// retries a failed list and watch with a backoff that doubles from 800 ms
// to 30 s with a jitter of up to as much again (tools/cache's
// defaultBackoff*), so its first try after an outage comes up to about
// twice the outage later; each informer (Pods, jobs) has its own.
func (m *mixRun) apiserverRestarted(from, ready time.Time, down time.Duration) {
	m.classWatch.Excuse(from, ready.Add(min(2*down, 60*time.Second)+restartSettle))
}

// checkCappedClass stops the capped class's watch once every job finished
// (stopClassWatch) and summarises what it found.
func (m *mixRun) checkCappedClass() ([]violation, string) {
	report, out := m.stopClassWatch(nil)
	if report.Peak == 0 {
		out = append(out, violation{what: fmt.Sprintf("the watch of ExtractorClass %s saw no Pod in flight", m.class.Name)})
	}
	return out, fmt.Sprintf("capped class (maxRunning %d, maxRunningPerNamespace %d): jobs %d, peak in flight %d (per namespace %d), Pod events checked %d, relists %d, jobs queued %d, longest Queued with a free slot %s (grace 2s)",
		cappedMaxRunning, cappedMaxPerNamespace, m.capped, report.Peak, report.PeakPerNamespace, report.Events, report.Relists,
		report.JobsQueued, report.LongestFreeWait.Round(time.Millisecond))
}
