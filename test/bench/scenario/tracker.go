package scenario

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pybase/extraction-operator/test/bench/workload"
	"github.com/pybase/extraction-operator/test/harness/sim"
)

// Tracker records, from the harness's own watches, when each job was
// created, when each of its Pods appeared, when it promised each retry and
// when it reached a terminal state. Times are the harness's clock at the
// watch event: API timestamps have whole seconds only.
type Tracker struct {
	state func(client.Object) workload.JobState

	mu      sync.Mutex
	created map[string]time.Time // job name → when the create call was sent
	// names holds the measured jobs; warm-up jobs are only counted in warmDone.
	names    map[types.UID]string
	warmDone map[types.UID]bool
	terminal map[types.UID]jobEnd
	queued   map[types.UID]bool              // jobs seen waiting for a slot of their class
	steps    map[types.UID][]string          // job → its state in every watch event
	retryAt  map[types.UID]map[int]time.Time // job → attempt → promised start
	pods     map[types.UID][]time.Time       // job → when each attempt's Pod was seen
	changed  chan struct{}                   // closed and replaced on every terminal job
}

type jobEnd struct {
	at        time.Time
	succeeded bool
}

func newTracker(state func(client.Object) workload.JobState) *Tracker {
	return &Tracker{
		state:    state,
		created:  map[string]time.Time{},
		names:    map[types.UID]string{},
		warmDone: map[types.UID]bool{},
		terminal: map[types.UID]jobEnd{},
		queued:   map[types.UID]bool{},
		steps:    map[types.UID][]string{},
		retryAt:  map[types.UID]map[int]time.Time{},
		pods:     map[types.UID][]time.Time{},
		changed:  make(chan struct{}),
	}
}

// Start hooks the tracker to the harness's informer of the side's jobs.
func (t *Tracker) Start(ctx context.Context, informers cache.Cache, jobType client.Object) error {
	inf, err := informers.GetInformer(ctx, jobType)
	if err != nil {
		return err
	}
	_, err = inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { t.observe(obj, time.Now()) },
		UpdateFunc: func(_, obj any) { t.observe(obj, time.Now()) },
	})
	return err
}

func (t *Tracker) observe(obj any, now time.Time) {
	job, ok := obj.(client.Object)
	if !ok {
		return
	}
	st := t.state(job)
	t.mu.Lock()
	defer t.mu.Unlock()
	if strings.HasPrefix(job.GetName(), warmUpPrefix) {
		if st.Terminal && !t.warmDone[job.GetUID()] {
			t.warmDone[job.GetUID()] = true
			close(t.changed)
			t.changed = make(chan struct{})
		}
		return
	}
	t.names[job.GetUID()] = job.GetName()
	if st.Queued {
		t.queued[job.GetUID()] = true
	}
	t.steps[job.GetUID()] = append(t.steps[job.GetUID()], st.Step)
	if st.RetryAttempt > 0 {
		due := t.retryAt[job.GetUID()]
		if due == nil {
			due = map[int]time.Time{}
			t.retryAt[job.GetUID()] = due
		}
		due[st.RetryAttempt] = st.RetryAt
	}
	if _, done := t.terminal[job.GetUID()]; st.Terminal && !done {
		t.terminal[job.GetUID()] = jobEnd{at: now, succeeded: st.Succeeded}
		close(t.changed)
		t.changed = make(chan struct{})
	}
}

// Created records when the create call of a job was sent.
func (t *Tracker) Created(name string, at time.Time) {
	t.mu.Lock()
	t.created[name] = at
	t.mu.Unlock()
}

// PodSeen records a Pod from the kubelet's watch.
func (t *Tracker) PodSeen(p sim.PodSeen) {
	t.mu.Lock()
	defer t.mu.Unlock()
	seen := t.pods[p.Owner]
	for len(seen) < p.Attempt {
		seen = append(seen, time.Time{})
	}
	seen[p.Attempt-1] = p.Seen
	t.pods[p.Owner] = seen
}

// WaitTerminal waits until n measured jobs are terminal, failing early when
// check reports a dead controller.
func (t *Tracker) WaitTerminal(ctx context.Context, n int, timeout time.Duration, check func() error) error {
	return t.wait(ctx, n, timeout, check, func() int { return len(t.terminal) })
}

// WaitWarmedUp waits until n warm-up jobs are terminal.
func (t *Tracker) WaitWarmedUp(ctx context.Context, n int, timeout time.Duration, check func() error) error {
	return t.wait(ctx, n, timeout, check, func() int { return len(t.warmDone) })
}

func (t *Tracker) wait(ctx context.Context, n int, timeout time.Duration, check func() error, count func() int) error {
	deadline := time.After(timeout)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		t.mu.Lock()
		done, changed := count(), t.changed
		t.mu.Unlock()
		if done >= n {
			return nil
		}
		select {
		case <-changed:
		case <-tick.C:
			if err := check(); err != nil {
				return err
			}
		case <-deadline:
			return fmt.Errorf("only %d of %d jobs finished within %s", done, n, timeout)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Terminal returns the number of finished jobs and the time the last one finished.
func (t *Tracker) Terminal() (n int, last time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, end := range t.terminal {
		if end.at.After(last) {
			last = end.at
		}
	}
	return len(t.terminal), last
}

// Waited is the number of measured jobs the watch saw in phase Queued.
func (t *Tracker) Waited() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.queued)
}

// Paths counts the measured jobs by the states their watch events showed,
// in order, joined by " → ": each event after the create is one write.
func (t *Tracker) Paths() map[string]int {
	t.mu.Lock()
	defer t.mu.Unlock()
	paths := map[string]int{}
	for uid := range t.names {
		paths[strings.Join(t.steps[uid], " → ")]++
	}
	return paths
}

// Attempts is the number of Pods seen for measured jobs.
func (t *Tracker) Attempts() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for uid := range t.names {
		n += len(t.pods[uid])
	}
	return n
}

// RetrySeen is one retry as the watches saw it: when the job promised it, and
// when its Pod appeared.
type RetrySeen struct {
	Due, Seen time.Time
}

// Lateness is how much later than promised the retry's Pod appeared;
// negative for an early retry.
func (r RetrySeen) Lateness() time.Duration { return r.Seen.Sub(r.Due) }

// Retries lists every retry whose promise and Pod the watches saw. missing
// counts retries whose promise the watch never saw; it should be 0.
func (t *Tracker) Retries() (retries []RetrySeen, missing int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for uid := range t.names {
		seen := t.pods[uid]
		for i := 1; i < len(seen); i++ {
			due, ok := t.retryAt[uid][i+1]
			if !ok || seen[i].IsZero() {
				missing++
				continue
			}
			retries = append(retries, RetrySeen{Due: due, Seen: seen[i]})
		}
	}
	return retries, missing
}

// StartLatency is, for every job, the time from its create call to its
// first Pod appearing in the watch.
func (t *Tracker) StartLatency() []time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []time.Duration
	for uid, name := range t.names {
		seen := t.pods[uid]
		created, ok := t.created[name]
		if !ok || len(seen) == 0 || seen[0].IsZero() {
			continue
		}
		out = append(out, seen[0].Sub(created))
	}
	return out
}

// Outcomes checks every job's end against its plan: it returns how many
// succeeded and failed, and how many ended otherwise than the plan says
// (wrong end state or wrong number of attempts).
func (t *Tracker) Outcomes(plans map[string]workload.Plan) (succeeded, failed, wrong int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for uid, end := range t.terminal {
		if end.succeeded {
			succeeded++
		} else {
			failed++
		}
		plan, ok := plans[t.names[uid]]
		if !ok {
			continue
		}
		wantOK, wantAttempts := plan.Expected(workload.MaxRetries)
		if end.succeeded != wantOK || len(t.pods[uid]) != wantAttempts {
			wrong++
		}
	}
	return succeeded, failed, wrong
}
