package controllers

import (
	"cmp"
	"container/heap"
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/google/btree"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
)

// The cache field indexes the queue and the class status count with.
const (
	// activeClassField indexes attempt Pods that count against their class's
	// maxRunning by the class's name.
	activeClassField = "admission.activeClass"
	// queuedClassField indexes jobs in phase Queued by their class's name.
	queuedClassField = "admission.queuedClass"
)

// activeAttemptClass is the class an attempt Pod counts against: every Pod
// with the class label that has not finished, terminating and
// scheduling-gated Pods included, since they still hold the service's
// capacity or will.
func activeAttemptClass(pod *corev1.Pod) (string, bool) {
	class := pod.Labels[ejv1.ExtractorClassLabel]
	if class == "" || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return "", false
	}
	return class, true
}

// queuedJobClass is the class a job waits for while it is Queued.
func queuedJobClass(job *ejv1.ExtractionJob) (string, bool) {
	if job.Status.Phase != ejv1.PhaseQueued || job.Status.ExtractorClassName == "" {
		return "", false
	}
	return job.Status.ExtractorClassName, true
}

// orderKey is a job's place in its class's queue: first come, first served
// by the time it became ready to start an attempt, ties by namespace, then name.
type orderKey struct {
	readyAt time.Time
	job     types.NamespacedName
}

// queueOrderKey is the job's order key: its creation for a first attempt,
// else its nextRetryAt, which a Queued job keeps while it waits.
func queueOrderKey(job *ejv1.ExtractionJob) orderKey {
	readyAt := job.CreationTimestamp.Time
	if job.Status.Attempt > 0 && job.Status.NextRetryAt != nil {
		readyAt = job.Status.NextRetryAt.Time
	}
	return orderKey{readyAt: readyAt, job: types.NamespacedName{Namespace: job.Namespace, Name: job.Name}}
}

func compareOrderKeys(a, b orderKey) int {
	return cmp.Or(a.readyAt.Compare(b.readyAt), cmp.Compare(a.job.Namespace, b.job.Namespace), cmp.Compare(a.job.Name, b.job.Name))
}

func orderKeyLess(a, b orderKey) bool { return compareOrderKeys(a, b) < 0 }

// namespaceQueue holds one namespace's waiting jobs of a class, in order.
// A B-tree keeps the heads cheap to find and any job cheap to drop, however
// long the queue grows.
type namespaceQueue = btree.BTreeG[orderKey]

func newNamespaceQueue() *namespaceQueue { return btree.NewG(16, orderKeyLess) }

// classCaps are a class's limits; zero means none.
type classCaps struct {
	maxRunning, maxRunningPerNamespace int
}

func capsOf(class *ejv1.ExtractorClass) classCaps {
	var caps classCaps
	if class.Spec.MaxRunning != nil {
		caps.maxRunning = int(*class.Spec.MaxRunning)
	}
	if class.Spec.MaxRunningPerNamespace != nil {
		caps.maxRunningPerNamespace = int(*class.Spec.MaxRunningPerNamespace)
	}
	return caps
}

func (c classCaps) capped() bool { return c.maxRunning > 0 || c.maxRunningPerNamespace > 0 }

// classLoad is what counts against a class's caps.
type classLoad struct {
	running     int
	byNamespace map[string]int
}

// reservation is a slot an admitted job holds until the cache shows its Pod.
type reservation struct {
	class string
	pod   types.NamespacedName
	// key and waited put the job back where it was if its Pod create fails.
	key    orderKey
	waited bool
	// probe says the slot is a probe of the class's half-open circuit.
	probe bool
}

// countLoad counts the class's active Pods the cache shows, and the
// reservations whose Pods it does not show yet.
func countLoad(activePods []types.NamespacedName, reservations []reservation) classLoad {
	load := classLoad{byNamespace: map[string]int{}}
	shown := map[types.NamespacedName]bool{}
	for _, pod := range activePods {
		shown[pod] = true
		load.running++
		load.byNamespace[pod.Namespace]++
	}
	for _, r := range reservations {
		if !shown[r.pod] {
			load.running++
			load.byNamespace[r.pod.Namespace]++
		}
	}
	return load
}

// selectAdmissions picks the jobs the class admits next, in queue order: as
// many as it has free slots, skipping the jobs of namespaces at their
// maxRunningPerNamespace, and dropping the entries that stale reports. It
// reports too whether slots were left that no waiting job could take.
// Each namespace's queue is ordered, so this merges the namespaces' heads:
// it looks at no more jobs than it picks, whatever the queues' lengths.
func selectAdmissions(caps classCaps, load classLoad, queues map[string]*namespaceQueue, stale func(orderKey) bool) (picked []orderKey, slotsLeft bool) {
	free := math.MaxInt
	if caps.maxRunning > 0 {
		free = caps.maxRunning - load.running
	}
	heads := &headHeap{}
	for ns, q := range queues {
		room := free
		if caps.maxRunningPerNamespace > 0 {
			room = min(room, caps.maxRunningPerNamespace-load.byNamespace[ns])
		}
		if room > 0 {
			if c, ok := nextHead(q, nil, stale); ok {
				heads.items = append(heads.items, namespaceHead{key: c, queue: q, room: room})
			}
		}
	}
	heap.Init(heads)
	for free > 0 && heads.Len() > 0 {
		head := heap.Pop(heads).(namespaceHead)
		picked = append(picked, head.key)
		free--
		head.room--
		if next, ok := nextHead(head.queue, &head.key, stale); ok && head.room > 0 {
			head.key = next
			heap.Push(heads, head)
		}
	}
	return picked, free > 0
}

// nextHead is the first entry of q after the key (from the start for nil)
// that is not stale; the stale entries it passes are dropped.
func nextHead(q *namespaceQueue, after *orderKey, stale func(orderKey) bool) (orderKey, bool) {
	var found orderKey
	var ok bool
	var dropped []orderKey
	visit := func(k orderKey) bool {
		if after != nil && compareOrderKeys(k, *after) == 0 {
			return true
		}
		if stale(k) {
			dropped = append(dropped, k)
			return true
		}
		found, ok = k, true
		return false
	}
	if after == nil {
		q.Ascend(visit)
	} else {
		q.AscendGreaterOrEqual(*after, visit)
	}
	for _, k := range dropped {
		q.Delete(k)
	}
	return found, ok
}

// namespaceHead is a namespace's first waiting job and the slots its namespace may still take.
type namespaceHead struct {
	key   orderKey
	queue *namespaceQueue
	room  int
}

// headHeap orders the namespaces' heads, earliest first.
type headHeap struct{ items []namespaceHead }

func (h *headHeap) Len() int           { return len(h.items) }
func (h *headHeap) Less(i, j int) bool { return orderKeyLess(h.items[i].key, h.items[j].key) }
func (h *headHeap) Swap(i, j int)      { h.items[i], h.items[j] = h.items[j], h.items[i] }
func (h *headHeap) Push(x any)         { h.items = append(h.items, x.(namespaceHead)) }
func (h *headHeap) Pop() any {
	last := h.items[len(h.items)-1]
	h.items = h.items[:len(h.items)-1]
	return last
}

// admissionVerdict is the queue's answer to a job that is ready to start an attempt.
type admissionVerdict struct {
	Admitted bool
	// NamespaceCap: refused because the job's namespace is at maxRunningPerNamespace.
	NamespaceCap bool
	// Waited is how long the job waited in the queue (0 if it never was Queued); for the histogram.
	Waited time.Duration
	// CircuitOpen: refused because the class's circuit breaker is open, or
	// half-open with all its probes running.
	CircuitOpen bool
	// RampUp: refused because the class's circuit closed moments ago and lets
	// the queued jobs start gradually.
	RampUp bool
	// Probe: admitted as a probe of the class's half-open circuit.
	Probe bool
}

// queuedJob is a job waiting in a class's queue.
type queuedJob struct {
	class string
	key   orderKey
	// refused says the job was turned away at least once, so it really waited.
	refused bool
}

// admissionQueue decides which ready jobs of capped classes may start an
// attempt. It keeps no count of its own: running attempts are the cached
// Pods of the class that have not finished, plus the slots of jobs admitted
// moments ago whose Pods the cache does not show yet. A job that is deleted,
// cancelled or finished, or an operator restart, cannot leak a slot: the
// slot is its Pod.
type admissionQueue struct {
	reader client.Reader
	clock  clock.PassiveClock

	// mu makes counting and reserving one step, so concurrent workers never
	// admit two jobs into one last slot.
	mu sync.Mutex
	// seeded says the queues hold the jobs the cache shows Queued; until then
	// nothing is admitted.
	seeded bool
	// classes holds each class's queues, by class and namespace.
	classes map[string]map[string]*namespaceQueue
	// queued are the waiting jobs.
	queued map[types.NamespacedName]queuedJob
	// reserved are the admitted jobs whose Pods the cache has not shown, by
	// job and by Pod.
	reserved      map[types.NamespacedName]reservation
	reservedByPod map[types.NamespacedName]types.NamespacedName
	// wakeQueue is the job controller's work queue, once it started, for the
	// wake-ups that follow forget and podCreateFailed.
	wakeQueue workqueue.TypedRateLimitingInterface[reconcile.Request]
	// circuits count the consecutive failures of the classes' closed circuits.
	circuits *circuitTallies
}

// newAdmissionQueue counts running attempts from the cached Pods (reader is
// the manager's cache; setupWithManager registers the field indexes it
// counts with).
func newAdmissionQueue(reader client.Reader, clock clock.PassiveClock) *admissionQueue {
	return &admissionQueue{
		reader:        reader,
		clock:         clock,
		classes:       map[string]map[string]*namespaceQueue{},
		queued:        map[types.NamespacedName]queuedJob{},
		reserved:      map[types.NamespacedName]reservation{},
		reservedByPod: map[types.NamespacedName]types.NamespacedName{},
		circuits:      newCircuitTallies(clock),
	}
}

// setupWithManager registers the field indexes the queue counts with, the
// watches on the job controller's builder that wake queue heads when a slot
// frees (a Pod of the class finishing or disappearing; the class created or
// its caps raised), and the ExtractorClass status controller.
func (q *admissionQueue) setupWithManager(mgr ctrl.Manager, jobs *builder.Builder) error {
	if err := registerAdmissionIndexes(mgr.GetFieldIndexer()); err != nil {
		return err
	}
	jobs.Watches(&corev1.Pod{}, handler.Funcs{
		CreateFunc: func(ctx context.Context, e event.CreateEvent, wq workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			q.podSeen(ctx, wq, nil, e.Object)
		},
		UpdateFunc: func(ctx context.Context, e event.UpdateEvent, wq workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			q.podSeen(ctx, wq, e.ObjectOld, e.ObjectNew)
		},
		DeleteFunc: func(ctx context.Context, e event.DeleteEvent, wq workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			q.podSeen(ctx, wq, e.Object, nil)
		},
	}).Watches(&ejv1.ExtractorClass{}, handler.Funcs{
		CreateFunc: func(ctx context.Context, e event.CreateEvent, wq workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			q.wake(ctx, wq, e.Object.GetName())
		},
		UpdateFunc: func(ctx context.Context, e event.UpdateEvent, wq workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			old, updated := e.ObjectOld.(*ejv1.ExtractorClass), e.ObjectNew.(*ejv1.ExtractorClass)
			if capsOf(old) != capsOf(updated) || circuitChanged(old, updated) {
				q.wake(ctx, wq, updated.Name)
			}
		},
		DeleteFunc: func(ctx context.Context, e event.DeleteEvent, wq workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			q.wake(ctx, wq, e.Object.GetName())
		},
	}).WatchesRawSource(source.Func(func(_ context.Context, wq workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
		q.mu.Lock()
		defer q.mu.Unlock()
		q.wakeQueue = wq
		return nil
	}))
	if err := setupCircuitOpener(mgr, q.clock, q.circuits); err != nil {
		return err
	}
	return setupExtractorClassStatus(mgr, q.clock, q)
}

// circuitChanged reports whether the class's circuit breaker or its state
// changed, which may let queued jobs start.
func circuitChanged(old, updated *ejv1.ExtractorClass) bool {
	return !equality.Semantic.DeepEqual(old.Spec.CircuitBreaker, updated.Spec.CircuitBreaker) ||
		!equality.Semantic.DeepEqual(old.Status.Circuit, updated.Status.Circuit)
}

// registerAdmissionIndexes adds the cache indexes that count a class's
// active Pods and Queued jobs without reading every Pod or job.
func registerAdmissionIndexes(indexer client.FieldIndexer) error {
	if err := indexer.IndexField(context.Background(), &corev1.Pod{}, activeClassField, indexActiveClass); err != nil {
		return fmt.Errorf("indexing pods by active class: %w", err)
	}
	if err := indexer.IndexField(context.Background(), &ejv1.ExtractionJob{}, queuedClassField, indexQueuedClass); err != nil {
		return fmt.Errorf("indexing extractionjobs by queued class: %w", err)
	}
	return nil
}

// indexActiveClass is a Pod's activeClassField.
func indexActiveClass(o client.Object) []string {
	if class, ok := activeAttemptClass(o.(*corev1.Pod)); ok {
		return []string{class}
	}
	return nil
}

// indexQueuedClass is a job's queuedClassField.
func indexQueuedClass(o client.Object) []string {
	if class, ok := queuedJobClass(o.(*ejv1.ExtractionJob)); ok {
		return []string{class}
	}
	return nil
}

// admit is asked by a job that is ready to start an attempt of the class.
// See admissionVerdict; an admitted job holds a reservation until the cache
// shows its Pod, or podCreateFailed or forget gives it back.
func (q *admissionQueue) admit(ctx context.Context, job *ejv1.ExtractionJob, class *ejv1.ExtractorClass) (admissionVerdict, error) {
	key := types.NamespacedName{Namespace: job.Namespace, Name: job.Name}
	pod := types.NamespacedName{Namespace: job.Namespace, Name: podName(job, job.Status.Attempt+1)}
	q.mu.Lock()
	defer q.mu.Unlock()
	if err := q.seed(ctx); err != nil {
		return admissionVerdict{}, err
	}
	if held, err := q.holdsSlot(ctx, key, pod); err != nil || held {
		// An earlier reconcile admitted the job, and its status write was lost.
		return admissionVerdict{Admitted: held}, err
	}
	entry := q.enqueue(key, class.Name, queueOrderKey(job))
	sel, err := q.gatedCaps(ctx, class)
	if err != nil {
		return admissionVerdict{}, err
	}
	refuse := func(verdict admissionVerdict) (admissionVerdict, error) {
		entry.refused = true
		q.queued[key] = entry
		return verdict, nil
	}
	if sel.gate.mode == gateOpen {
		return refuse(admissionVerdict{CircuitOpen: true})
	}
	if caps := sel.caps; caps.capped() {
		load := sel.load
		picked, slotsLeft := selectAdmissions(caps, load, q.classes[class.Name], q.staleEntry(ctx, class.Name, key))
		if !slices.ContainsFunc(picked, func(k orderKey) bool { return k.job == key }) {
			switch sel.gate.mode {
			case gateProbe:
				return refuse(admissionVerdict{CircuitOpen: true})
			case gateRampUp:
				if load.running >= sel.gate.limit {
					return refuse(admissionVerdict{RampUp: true})
				}
			}
			// A full class is the reason even when the namespace is at its cap too.
			classFull := caps.maxRunning > 0 && load.running >= caps.maxRunning
			atNamespaceCap := caps.maxRunningPerNamespace > 0 && load.byNamespace[key.Namespace] >= caps.maxRunningPerNamespace
			return refuse(admissionVerdict{NamespaceCap: !classFull && (atNamespaceCap || slotsLeft)})
		}
	}
	q.dequeue(key)
	waited := entry.refused || job.Status.Phase == ejv1.PhaseQueued
	probe := sel.gate.mode == gateProbe
	q.reserve(key, reservation{class: class.Name, pod: pod, key: entry.key, waited: waited, probe: probe})
	verdict := admissionVerdict{Admitted: true, Probe: probe}
	if waited {
		verdict.Waited = max(0, q.clock.Since(entry.key.readyAt))
	}
	return verdict, nil
}

// gatedSelection is what limits a class's next admissions: its caps, as its
// circuit breaker's gate narrows them, and the load they count against.
type gatedSelection struct {
	caps classCaps
	load classLoad
	gate circuitGate
}

// gatedCaps narrows the class's caps by its circuit: an open circuit admits
// nothing; a half-open one admits its probes, counted from the probe Pods
// and reservations, from the head of the queue; one that closed moments ago
// admits a number that grows over rampUp. The load is counted only for a
// capped selection.
func (q *admissionQueue) gatedCaps(ctx context.Context, class *ejv1.ExtractorClass) (gatedSelection, error) {
	sel := gatedSelection{caps: capsOf(class)}
	if policy, ok := circuitPolicyOf(class); ok {
		target := sel.caps.maxRunning
		if target == 0 {
			load, err := q.load(ctx, class.Name)
			if err != nil {
				return sel, err
			}
			target = load.running + q.queueLength(class.Name)
		}
		sel.gate = policy.gate(class.Status.Circuit, q.clock.Now(), target)
		if q.circuits.pending(class) != nil {
			// The threshold is reached: nothing starts while the class's status is written.
			sel.gate = circuitGate{mode: gateOpen}
		}
	}
	switch sel.gate.mode {
	case gateOpen:
		return sel, nil
	case gateProbe:
		probes, err := activeProbePods(ctx, q.reader, class.Name)
		if err != nil {
			return sel, err
		}
		var reservations []reservation
		for _, r := range q.reserved {
			if r.class == class.Name && r.probe {
				reservations = append(reservations, r)
			}
		}
		sel.caps = classCaps{maxRunning: sel.gate.limit}
		sel.load = countLoad(probes, reservations)
		return sel, nil
	case gateRampUp:
		if sel.caps.maxRunning == 0 || sel.gate.limit < sel.caps.maxRunning {
			sel.caps.maxRunning = sel.gate.limit
		}
	}
	if sel.caps.capped() {
		load, err := q.load(ctx, class.Name)
		if err != nil {
			return sel, err
		}
		sel.load = load
	}
	return sel, nil
}

// queueLength is how many jobs wait in the class's queue.
func (q *admissionQueue) queueLength(class string) int {
	n := 0
	for _, nsQueue := range q.classes[class] {
		n += nsQueue.Len()
	}
	return n
}

// holdsSlot reports whether the job already holds a slot for the Pod: a
// reservation, or the Pod itself in the cache.
func (q *admissionQueue) holdsSlot(ctx context.Context, job, pod types.NamespacedName) (bool, error) {
	if r, ok := q.reserved[job]; ok && r.pod == pod {
		return true, nil
	}
	cached := &corev1.Pod{}
	err := q.reader.Get(ctx, pod, cached, client.UnsafeDisableDeepCopy)
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading pod %s: %w", pod, err)
	}
	_, active := activeAttemptClass(cached)
	return active, nil
}

// seed fills the queues, once, with the jobs the cache shows Queued, so that
// after a restart they keep their places ahead of later jobs.
func (q *admissionQueue) seed(ctx context.Context) error {
	if q.seeded {
		return nil
	}
	jobs := &ejv1.ExtractionJobList{}
	if err := q.reader.List(ctx, jobs, client.UnsafeDisableDeepCopy); err != nil {
		return fmt.Errorf("listing extractionjobs to seed the queue: %w", err)
	}
	for i := range jobs.Items {
		job := &jobs.Items[i]
		if class, ok := queuedJobClass(job); ok {
			entry := q.enqueue(types.NamespacedName{Namespace: job.Namespace, Name: job.Name}, class, queueOrderKey(job))
			entry.refused = true
			q.queued[entry.key.job] = entry
		}
	}
	q.seeded = true
	return nil
}

// enqueue puts the job in the class's queue, or keeps it where it is, and
// returns its entry. A job that waited for another class leaves that queue.
func (q *admissionQueue) enqueue(job types.NamespacedName, class string, key orderKey) queuedJob {
	if entry, ok := q.queued[job]; ok {
		if entry.class == class && entry.key == key {
			return entry
		}
		q.dequeue(job)
	}
	queues := q.classes[class]
	if queues == nil {
		queues = map[string]*namespaceQueue{}
		q.classes[class] = queues
	}
	nsQueue := queues[job.Namespace]
	if nsQueue == nil {
		nsQueue = newNamespaceQueue()
		queues[job.Namespace] = nsQueue
	}
	nsQueue.ReplaceOrInsert(key)
	entry := queuedJob{class: class, key: key}
	q.queued[job] = entry
	return entry
}

// dequeue takes the job out of its queue; it reports whether it was there.
func (q *admissionQueue) dequeue(job types.NamespacedName) bool {
	entry, ok := q.queued[job]
	if !ok {
		return false
	}
	delete(q.queued, job)
	queues := q.classes[entry.class]
	if nsQueue := queues[job.Namespace]; nsQueue != nil {
		nsQueue.Delete(entry.key)
		if nsQueue.Len() == 0 {
			delete(queues, job.Namespace)
		}
	}
	if len(queues) == 0 {
		delete(q.classes, entry.class)
	}
	return true
}

func (q *admissionQueue) reserve(job types.NamespacedName, r reservation) {
	q.unreserve(job)
	q.reserved[job] = r
	q.reservedByPod[r.pod] = job
}

// unreserve gives back the job's reservation; it reports whether there was one.
func (q *admissionQueue) unreserve(job types.NamespacedName) (reservation, bool) {
	r, ok := q.reserved[job]
	if ok {
		delete(q.reserved, job)
		delete(q.reservedByPod, r.pod)
	}
	return r, ok
}

// load counts what holds the class's slots: its active cached Pods, from
// the index, and its reservations.
func (q *admissionQueue) load(ctx context.Context, class string) (classLoad, error) {
	active, err := activePods(ctx, q.reader, class)
	if err != nil {
		return classLoad{}, err
	}
	var reservations []reservation
	for _, r := range q.reserved {
		if r.class == class {
			reservations = append(reservations, r)
		}
	}
	return countLoad(active, reservations), nil
}

// activePods lists the class's Pods that count against its caps, from the cache's index.
func activePods(ctx context.Context, reader client.Reader, class string) ([]types.NamespacedName, error) {
	pods := &corev1.PodList{}
	if err := reader.List(ctx, pods, client.MatchingFields{activeClassField: class}, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("listing the active pods of ExtractorClass %s: %w", class, err)
	}
	names := make([]types.NamespacedName, len(pods.Items))
	for i, pod := range pods.Items {
		names[i] = types.NamespacedName{Namespace: pod.Namespace, Name: pod.Name}
	}
	return names, nil
}

// activeProbePods lists the class's Pods that hold a probe slot of its
// half-open circuit (see holdsProbeSlot).
func activeProbePods(ctx context.Context, reader client.Reader, class string) ([]types.NamespacedName, error) {
	pods := &corev1.PodList{}
	if err := reader.List(ctx, pods, client.MatchingLabels{ejv1.ExtractorClassLabel: class, ejv1.CircuitProbeLabel: "true"},
		client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("listing the probe pods of ExtractorClass %s: %w", class, err)
	}
	var names []types.NamespacedName
	for i := range pods.Items {
		if pod := &pods.Items[i]; holdsProbeSlot(pod) {
			names = append(names, types.NamespacedName{Namespace: pod.Namespace, Name: pod.Name})
		}
	}
	return names, nil
}

// holdsProbeSlot says a probe Pod still counts against the circuit's probes:
// it has not finished, or its outcome is not recorded yet (it keeps the
// tracking finalizer until then). Otherwise a probe that just failed would
// free its slot for another probe before its failure opens the circuit again.
func holdsProbeSlot(pod *corev1.Pod) bool {
	if pod.Labels[ejv1.CircuitProbeLabel] != "true" {
		return false
	}
	_, active := activeAttemptClass(pod)
	return active || controllerutil.ContainsFinalizer(pod, ejv1.AttemptTrackingFinalizer)
}

// staleEntry reports queue entries of the class whose job no longer waits
// for it: gone from the cache, being deleted, finished, cancelled, or moved
// to another class. Such an entry would otherwise take a slot in the
// selection that no job ever claims; the entry leaves the queue's index.
// The asking job is never stale: the cache may not show its class yet.
func (q *admissionQueue) staleEntry(ctx context.Context, class string, asker types.NamespacedName) func(orderKey) bool {
	return func(k orderKey) bool {
		if k.job == asker {
			return false
		}
		job := &ejv1.ExtractionJob{}
		err := q.reader.Get(ctx, k.job, job, client.UnsafeDisableDeepCopy)
		if err != nil && !apierrors.IsNotFound(err) {
			return false
		}
		stale := apierrors.IsNotFound(err) || !job.DeletionTimestamp.IsZero() || job.Status.Phase.Finished() || job.Spec.Cancel ||
			(job.Status.ExtractorClassName != "" && job.Status.ExtractorClassName != class)
		if stale {
			delete(q.queued, k.job)
		}
		return stale
	}
}

// expectWaiting puts the jobs that waited for a capped class to appear (or
// to serve their format) in its queue, in their order, before any of them
// asks: they become ready together, and without this the first one a worker
// happens to reconcile would take the free slot, not the first that came.
func (q *admissionQueue) expectWaiting(class *ejv1.ExtractorClass, jobs []ejv1.ExtractionJob) {
	if !capsOf(class).capped() {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	for i := range jobs {
		job := &jobs[i]
		if job.Status.Phase.Finished() || job.Spec.Cancel || !job.DeletionTimestamp.IsZero() {
			continue
		}
		q.enqueue(client.ObjectKeyFromObject(job), class.Name, queueOrderKey(job))
	}
}

// podCreateFailed gives back the reservation of an admitted job whose Pod
// create failed, and puts the job back in its place in the queue.
func (q *admissionQueue) podCreateFailed(job types.NamespacedName) {
	q.mu.Lock()
	defer q.mu.Unlock()
	r, ok := q.unreserve(job)
	if !ok {
		return
	}
	entry := q.enqueue(job, r.class, r.key)
	entry.refused = r.waited
	q.queued[job] = entry
	q.wakeLocked(context.Background(), q.wakeQueue, r.class)
}

// forget drops a job from its queue and gives back its reservation
// (cancelled, deleted, finished, class changed), waking the next jobs.
func (q *admissionQueue) forget(job types.NamespacedName) {
	q.mu.Lock()
	defer q.mu.Unlock()
	class := q.queued[job].class
	if r, ok := q.unreserve(job); ok {
		class = r.class
	}
	q.dequeue(job)
	if class != "" {
		q.wakeLocked(context.Background(), q.wakeQueue, class)
	}
}

// podSeen handles a watch event of a Pod: the cache shows it now, so the
// reservation of its job ends; and a Pod that finished or is gone frees a
// slot of its class. An attempt that finished is counted by its class's
// circuit breaker before its slot is offered: the failure that reaches the
// threshold lets no attempt start in its place.
func (q *admissionQueue) podSeen(ctx context.Context, wq workqueue.TypedRateLimitingInterface[reconcile.Request], old, updated client.Object) {
	current := updated
	if current == nil {
		current = old
	}
	pod, ok := current.(*corev1.Pod)
	if !ok || pod.Labels[ejv1.ExtractorClassLabel] == "" {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if job, ok := q.reservedByPod[types.NamespacedName{Namespace: pod.Namespace, Name: pod.Name}]; ok {
		q.unreserve(job)
	}
	// A created Pod frees nothing unless it is created finished.
	wasActive, isActive := true, false
	wasProbe, isProbe := false, false
	if old != nil {
		_, wasActive = activeAttemptClass(old.(*corev1.Pod))
		wasProbe = holdsProbeSlot(old.(*corev1.Pod))
	}
	if updated != nil {
		_, isActive = activeAttemptClass(pod)
		isProbe = holdsProbeSlot(pod)
	}
	if old != nil && updated != nil && wasActive && !isActive {
		q.countFinishedAttempt(ctx, pod)
	}
	if (wasActive && !isActive) || (wasProbe && !isProbe) {
		q.wakeLocked(ctx, wq, pod.Labels[ejv1.ExtractorClassLabel])
	}
}

// countFinishedAttempt feeds an attempt that finished to its class's
// circuit tally, as the cache shows the class.
func (q *admissionQueue) countFinishedAttempt(ctx context.Context, pod *corev1.Pod) {
	class := &ejv1.ExtractorClass{}
	if err := q.reader.Get(ctx, client.ObjectKey{Name: pod.Labels[ejv1.ExtractorClassLabel]}, class); err != nil {
		if !apierrors.IsNotFound(err) {
			ctrl.LoggerFrom(ctx).Error(err, "cannot count a finished attempt for the circuit breaker", "pod", client.ObjectKeyFromObject(pod))
		}
		return
	}
	q.circuits.observe(class, pod)
}

// wake enqueues reconciles of the jobs the class would admit now.
func (q *admissionQueue) wake(ctx context.Context, wq workqueue.TypedRateLimitingInterface[reconcile.Request], class string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.wakeLocked(ctx, wq, class)
}

// wakeClass wakes the class's queue heads on the job controller's queue,
// once it started.
func (q *admissionQueue) wakeClass(ctx context.Context, class string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.wakeLocked(ctx, q.wakeQueue, class)
}

// wakeLocked enqueues, at the priority of a due retry, reconciles of the
// jobs that the class would admit now: as many queue heads as it has free
// slots, or every waiting job when the class is gone or no longer capped
// (they leave the queue then). The cost is that of the heads, not of the queue.
func (q *admissionQueue) wakeLocked(ctx context.Context, wq workqueue.TypedRateLimitingInterface[reconcile.Request], class string) {
	if wq == nil || class == "" {
		return
	}
	log := ctrl.LoggerFrom(ctx).WithValues("extractorClass", class)
	if err := q.seed(ctx); err != nil {
		log.Error(err, "cannot wake queued jobs")
		return
	}
	queues := q.classes[class]
	if len(queues) == 0 {
		return
	}
	ec := &ejv1.ExtractorClass{}
	sel := gatedSelection{}
	if err := q.reader.Get(ctx, client.ObjectKey{Name: class}, ec); err == nil {
		if sel, err = q.gatedCaps(ctx, ec); err != nil {
			log.Error(err, "cannot wake queued jobs")
			return
		}
	} else if !apierrors.IsNotFound(err) {
		log.Error(err, "cannot wake queued jobs")
		return
	}
	if sel.gate.mode == gateOpen {
		return
	}
	picked, _ := selectAdmissions(sel.caps, sel.load, queues, q.staleEntry(ctx, class, types.NamespacedName{}))
	for _, k := range picked {
		enqueueAtDueRetryPriority(wq, reconcile.Request{NamespacedName: k.job})
	}
	if len(picked) > 0 {
		log.V(1).Info("woke queued jobs", "jobs", len(picked))
	}
}

// enqueueAtDueRetryPriority puts a woken job ahead of the event-driven
// reconciles, as a due retry is: a freed slot is a retry falling due.
func enqueueAtDueRetryPriority(wq workqueue.TypedRateLimitingInterface[reconcile.Request], req reconcile.Request) {
	if pq, ok := wq.(priorityqueue.PriorityQueue[reconcile.Request]); ok {
		pq.AddWithOpts(priorityqueue.AddOpts{Priority: new(dueRetryPriority)}, req)
		return
	}
	wq.Add(req)
}
