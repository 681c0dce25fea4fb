package scenario

import (
	"context"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
)

// slotWatch follows the attempt Pods of one ExtractorClass in the harness's
// Pod watch: how many are in flight (created and not finished) at once, and
// how soon a slot freed while jobs wait is taken by the next Pod. One watch
// delivers the Pods' events in the API server's order, so its count is the
// count the API server had, whatever the operator's cache lagged.
//
// It is not test/harness/classwatch, which checks the whole queue at every
// event of a Pod or a job, at a cost that grows with the jobs: at 10,000
// jobs the harness would take CPU time from the operator it measures, on
// the same cores. This watch does a constant amount of work per event.
type slotWatch struct {
	class      string
	maxRunning int // 0: the class has no cap
	jobs       int // the measured jobs, one attempt each

	mu       sync.Mutex
	live     map[types.UID]bool // every Pod seen: true while in flight
	inFlight int
	started  int // Pods seen created
	peak     int
	// freed holds the times of slots freed while the class was full (or
	// still refilling) and a job had not started yet, oldest first; the next
	// Pod created takes the oldest.
	freed []time.Time
	taken []time.Duration // freed → next Pod created
}

func newSlotWatch(class string, maxRunning, jobs int) *slotWatch {
	return &slotWatch{class: class, maxRunning: maxRunning, jobs: jobs, live: map[types.UID]bool{}}
}

// start hooks the watch to the harness's Pod informer.
func (w *slotWatch) start(ctx context.Context, informers cache.Cache) error {
	inf, err := informers.GetInformer(ctx, &corev1.Pod{})
	if err != nil {
		return err
	}
	_, err = inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { w.observe(obj, false, time.Now()) },
		UpdateFunc: func(_, obj any) { w.observe(obj, false, time.Now()) },
		DeleteFunc: func(obj any) {
			if tombstone, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
				obj = tombstone.Obj
			}
			w.observe(obj, true, time.Now())
		},
	})
	return err
}

func (w *slotWatch) observe(obj any, deleted bool, now time.Time) {
	pod, ok := obj.(*corev1.Pod)
	if !ok || pod.Labels[ejv1.ExtractorClassLabel] != w.class {
		return
	}
	finished := deleted || pod.DeletionTimestamp != nil || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
	w.mu.Lock()
	defer w.mu.Unlock()
	live, known := w.live[pod.UID]
	switch {
	case !known && !finished:
		w.live[pod.UID] = true
		w.started++
		w.inFlight++
		w.peak = max(w.peak, w.inFlight)
		if len(w.freed) > 0 {
			w.taken = append(w.taken, now.Sub(w.freed[0]))
			w.freed = w.freed[1:]
		}
	case live && finished:
		// The Pod stays known, so that later events of it count for nothing.
		w.live[pod.UID] = false
		w.inFlight--
		full := w.maxRunning > 0 && (w.inFlight+1 >= w.maxRunning || len(w.freed) > 0)
		if full && w.started < w.jobs {
			w.freed = append(w.freed, now)
		}
	}
}

// result is the peak in flight and the freed → taken times.
func (w *slotWatch) result() (peak int, taken []time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.peak, append([]time.Duration(nil), w.taken...)
}
