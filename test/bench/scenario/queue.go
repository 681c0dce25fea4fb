package scenario

import (
	"context"
	"fmt"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pybase/extraction-operator/test/bench/config"
	"github.com/pybase/extraction-operator/test/bench/measure"
	"github.com/pybase/extraction-operator/test/bench/report"
	"github.com/pybase/extraction-operator/test/bench/sides"
	"github.com/pybase/extraction-operator/test/bench/workload"
)

// Queue runs scenario 5, on the operator only (a batch/v1 Job has no cap
// across Jobs to compare with): n jobs, created as fast as possible, in an
// ExtractorClass that caps its attempts at maxRunning (0: no cap, the
// comparison), each attempt running s.QueueRunTime.
func Queue(ctx context.Context, s *config.Settings, side sides.Side, limits config.Limits, n, maxRunning int) *report.Result {
	res := &report.Result{Scenario: "queue", Side: side.Name(), Limits: limits,
		Queue: &report.QueueResult{MaxRunning: maxRunning, RunSeconds: s.QueueRunTime.Seconds()}}
	r, err := startRun(ctx, s, fmt.Sprintf("5-queue-%s-%s-%d-max%d", side.Name(), limits.Name, n, maxRunning), side, limits)
	if err != nil {
		return failed(res, err)
	}
	defer r.Close()
	if err := r.Client.Create(ctx, workload.QueueClass(int32(maxRunning))); err != nil {
		return failed(res, fmt.Errorf("creating ExtractorClass %s: %w", workload.QueueClassName, err))
	}
	slots := newSlotWatch(workload.QueueClassName, maxRunning, n)
	if err := slots.start(ctx, r.informers); err != nil {
		return failed(res, err)
	}
	runSeconds := int(s.QueueRunTime / time.Second)
	r.jobFor = func(name string, _ workload.Plan) client.Object { return workload.QueueJob(name, runSeconds) }
	time.Sleep(settle) // the class's first status write lands before the window begins
	if err := runJobs(ctx, r, res, "q", workload.Uniform(n, workload.PlanSucceed)); err != nil {
		return failed(res, err)
	}
	q := res.Queue
	var taken []time.Duration
	q.PeakInFlight, taken = slots.result()
	sum := measure.Summarize(taken)
	q.SlotTaken = &sum
	q.Waited, q.Paths = r.Tracker.Waited(), r.Tracker.Paths()
	if mem, err := measure.ReadMemory(side.Process().PID()); err == nil {
		q.RSS, q.PeakRSS = mem.RSS, mem.PeakRSS
	}
	return res
}
