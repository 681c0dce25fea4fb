package controllers

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
)

var queueEpoch = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// key is the order key of job ns/name, ready at queueEpoch + second s.
func key(s int, ns, name string) orderKey {
	return orderKey{readyAt: queueEpoch.Add(time.Duration(s) * time.Second), job: types.NamespacedName{Namespace: ns, Name: name}}
}

// queuesOf builds a class's namespace queues from order keys.
func queuesOf(keys ...orderKey) map[string]*namespaceQueue {
	queues := map[string]*namespaceQueue{}
	for _, k := range keys {
		if queues[k.job.Namespace] == nil {
			queues[k.job.Namespace] = newNamespaceQueue()
		}
		queues[k.job.Namespace].ReplaceOrInsert(k)
	}
	return queues
}

func neverStale(orderKey) bool { return false }

func TestQueueOrderKey(t *testing.T) {
	created := metav1.NewTime(queueEpoch)
	retryAt := ejv1.NewPreciseTime(queueEpoch.Add(time.Minute))
	for _, tc := range []struct {
		name   string
		status ejv1.ExtractionJobStatus
		want   time.Time
	}{
		{"a first attempt is ready when the job was created", ejv1.ExtractionJobStatus{}, queueEpoch},
		{"a retry is ready at its nextRetryAt", ejv1.ExtractionJobStatus{Attempt: 1, NextRetryAt: &retryAt}, retryAt.Time},
		{"a queued retry keeps the nextRetryAt it waited for", ejv1.ExtractionJobStatus{Phase: ejv1.PhaseQueued, Attempt: 2, NextRetryAt: &retryAt}, retryAt.Time},
	} {
		t.Run(tc.name, func(t *testing.T) {
			job := &ejv1.ExtractionJob{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "job", CreationTimestamp: created}, Status: tc.status}
			want := orderKey{readyAt: tc.want, job: types.NamespacedName{Namespace: "ns", Name: "job"}}
			if diff := cmp.Diff(want, queueOrderKey(job), cmp.AllowUnexported(orderKey{})); diff != "" {
				t.Errorf("queueOrderKey (-want +got):\n%s", diff)
			}
		})
	}
}

func TestOrderKeysTieByNamespaceThenName(t *testing.T) {
	keys := []orderKey{key(1, "a", "x"), key(0, "b", "z"), key(1, "a", "w"), key(1, "0", "z")}
	slices.SortFunc(keys, compareOrderKeys)
	want := []orderKey{key(0, "b", "z"), key(1, "0", "z"), key(1, "a", "w"), key(1, "a", "x")}
	if diff := cmp.Diff(want, keys, cmp.AllowUnexported(orderKey{})); diff != "" {
		t.Errorf("sorted keys (-want +got):\n%s", diff)
	}
}

func TestCountLoad(t *testing.T) {
	pod := func(ns, name string) types.NamespacedName { return types.NamespacedName{Namespace: ns, Name: name} }
	for _, tc := range []struct {
		name         string
		active       []types.NamespacedName
		reservations []reservation
		want         classLoad
	}{
		{"nothing runs", nil, nil, classLoad{byNamespace: map[string]int{}}},
		{"active pods count in their namespaces",
			[]types.NamespacedName{pod("a", "1"), pod("a", "2"), pod("b", "3")}, nil,
			classLoad{running: 3, byNamespace: map[string]int{"a": 2, "b": 1}}},
		{"a reservation counts until the cache shows its pod",
			[]types.NamespacedName{pod("a", "1")}, []reservation{{pod: pod("b", "2")}},
			classLoad{running: 2, byNamespace: map[string]int{"a": 1, "b": 1}}},
		{"a reservation whose pod the cache shows counts once",
			[]types.NamespacedName{pod("a", "1")}, []reservation{{pod: pod("a", "1")}},
			classLoad{running: 1, byNamespace: map[string]int{"a": 1}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, countLoad(tc.active, tc.reservations), cmp.AllowUnexported(classLoad{})); diff != "" {
				t.Errorf("countLoad (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSelectAdmissions(t *testing.T) {
	for _, tc := range []struct {
		name      string
		caps      classCaps
		load      classLoad
		queued    []orderKey
		stale     []orderKey
		want      []orderKey
		slotsLeft bool
	}{
		{
			name:   "free slots go to the earliest jobs across namespaces",
			caps:   classCaps{maxRunning: 3},
			load:   classLoad{running: 1},
			queued: []orderKey{key(3, "a", "late"), key(1, "b", "first"), key(2, "a", "second")},
			want:   []orderKey{key(1, "b", "first"), key(2, "a", "second")},
		},
		{
			name:   "a full class admits nothing",
			caps:   classCaps{maxRunning: 2},
			load:   classLoad{running: 2},
			queued: []orderKey{key(1, "a", "j")},
		},
		{
			name:      "a namespace at its cap is skipped, not waited on",
			caps:      classCaps{maxRunning: 4, maxRunningPerNamespace: 2},
			load:      classLoad{running: 2, byNamespace: map[string]int{"a": 2}},
			queued:    []orderKey{key(1, "a", "early"), key(2, "b", "later")},
			want:      []orderKey{key(2, "b", "later")},
			slotsLeft: true,
		},
		{
			name:   "a namespace's earlier jobs take its room first",
			caps:   classCaps{maxRunning: 5, maxRunningPerNamespace: 2},
			load:   classLoad{running: 1, byNamespace: map[string]int{"a": 1}},
			queued: []orderKey{key(1, "a", "1"), key(2, "a", "2"), key(3, "b", "3"), key(4, "b", "4"), key(5, "b", "5")},
			want:   []orderKey{key(1, "a", "1"), key(3, "b", "3"), key(4, "b", "4")},
			// One slot is left that only namespace a's next job could take.
			slotsLeft: true,
		},
		{
			name:      "without maxRunning only the namespace cap holds jobs back",
			caps:      classCaps{maxRunningPerNamespace: 1},
			load:      classLoad{byNamespace: map[string]int{}},
			queued:    []orderKey{key(1, "a", "1"), key(2, "a", "2"), key(3, "b", "3")},
			want:      []orderKey{key(1, "a", "1"), key(3, "b", "3")},
			slotsLeft: true,
		},
		{
			name:   "stale entries are passed over",
			caps:   classCaps{maxRunning: 1},
			load:   classLoad{},
			queued: []orderKey{key(1, "a", "gone"), key(2, "a", "waiting")},
			stale:  []orderKey{key(1, "a", "gone")},
			want:   []orderKey{key(2, "a", "waiting")},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			queues := queuesOf(tc.queued...)
			stale := func(k orderKey) bool { return slices.Contains(tc.stale, k) }
			got, slotsLeft := selectAdmissions(tc.caps, tc.load, queues, stale)
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(orderKey{})); diff != "" {
				t.Errorf("picked (-want +got):\n%s", diff)
			}
			if slotsLeft != tc.slotsLeft {
				t.Errorf("slotsLeft = %v, want %v", slotsLeft, tc.slotsLeft)
			}
			for _, k := range tc.stale {
				if _, found := queues[k.job.Namespace].Get(k); found {
					t.Errorf("stale entry %v is still queued", k.job)
				}
			}
		})
	}
}

func TestSelectAdmissionsLooksOnlyAtTheHeads(t *testing.T) {
	var keys []orderKey
	for i := range 10000 {
		keys = append(keys, key(i, fmt.Sprintf("ns-%d", i%10), fmt.Sprintf("job-%d", i)))
	}
	queues := queuesOf(keys...)
	looked := 0
	got, _ := selectAdmissions(classCaps{maxRunning: 50}, classLoad{running: 47}, queues, func(orderKey) bool { looked++; return false })
	if diff := cmp.Diff(keys[:3], got, cmp.AllowUnexported(orderKey{})); diff != "" {
		t.Errorf("picked (-want +got):\n%s", diff)
	}
	// One head per namespace, then the successors of the three picked.
	if looked > 13 {
		t.Errorf("selection looked at %d queued jobs for 3 free slots among 10 namespaces", looked)
	}
}

// The admission queue against a fake cache.

func admissionTestClass(name string, maxRunning, perNamespace *int32) *ejv1.ExtractorClass {
	return &ejv1.ExtractorClass{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       ejv1.ExtractorClassSpec{MaxRunning: maxRunning, MaxRunningPerNamespace: perNamespace},
	}
}

// admissionTestJob is a job of the class created at queueEpoch + second s.
func admissionTestJob(ns, name string, s int, phase ejv1.Phase) *ejv1.ExtractionJob {
	return &ejv1.ExtractionJob{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID(ns + "-" + name),
			CreationTimestamp: metav1.NewTime(queueEpoch.Add(time.Duration(s) * time.Second))},
		Status: ejv1.ExtractionJobStatus{Phase: phase, ExtractorClassName: "capped"},
	}
}

func classPod(ns, name, class string, phase corev1.PodPhase) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{ejv1.ExtractorClassLabel: class}},
		Status:     corev1.PodStatus{Phase: phase},
	}
}

// fakeAdmissionCache is a fake client with the queue's indexes.
func fakeAdmissionCache(objects ...client.Object) client.WithWatch {
	registerTestScheme()
	return fake.NewClientBuilder().WithScheme(testScheme).
		WithIndex(&corev1.Pod{}, activeClassField, indexActiveClass).
		WithIndex(&ejv1.ExtractionJob{}, queuedClassField, indexQueuedClass).
		WithStatusSubresource(&ejv1.ExtractorClass{}).
		WithObjects(objects...).Build()
}

func mustAdmit(t *testing.T, q *admissionQueue, job *ejv1.ExtractionJob, class *ejv1.ExtractorClass) admissionVerdict {
	t.Helper()
	verdict, err := q.admit(context.Background(), job, class)
	if err != nil {
		t.Fatalf("admit %s: %v", job.Name, err)
	}
	return verdict
}

func TestAdmissionQueue(t *testing.T) {
	clock := clocktesting.NewFakeClock(queueEpoch.Add(time.Minute))
	capped := admissionTestClass("capped", ptr.To[int32](2), ptr.To[int32](1))
	running := classPod("a", "running", "capped", corev1.PodRunning)
	finished := classPod("b", "done", "capped", corev1.PodSucceeded)
	queuedBefore := admissionTestJob("c", "queued-before-restart", 5, ejv1.PhaseQueued)
	early := admissionTestJob("a", "early", 1, ejv1.PhasePending)
	later := admissionTestJob("c", "later", 10, ejv1.PhasePending)
	q := newAdmissionQueue(fakeAdmissionCache(running, finished, queuedBefore, early, later), clock)

	type step struct {
		name string
		do   func() admissionVerdict
		want admissionVerdict
	}
	for _, s := range []step{
		{"a job of a namespace at its cap is refused for the namespace",
			func() admissionVerdict { return mustAdmit(t, q, early, capped) }, admissionVerdict{NamespaceCap: true}},
		{"a new job waits behind the job the cache showed Queued, which is seeded first",
			func() admissionVerdict { return mustAdmit(t, q, later, capped) }, admissionVerdict{}},
		{"the seeded job takes the free slot, and says how long it waited",
			func() admissionVerdict { return mustAdmit(t, q, queuedBefore, capped) }, admissionVerdict{Admitted: true, Waited: 55 * time.Second}},
		{"asking again holds the same reservation",
			func() admissionVerdict { return mustAdmit(t, q, queuedBefore, capped) }, admissionVerdict{Admitted: true}},
		{"the class is full with the reservation",
			func() admissionVerdict { return mustAdmit(t, q, later, capped) }, admissionVerdict{}},
		{"a failed pod create gives the slot back to the next job",
			func() admissionVerdict {
				q.podCreateFailed(types.NamespacedName{Namespace: "c", Name: "queued-before-restart"})
				return mustAdmit(t, q, queuedBefore, capped)
			}, admissionVerdict{Admitted: true, Waited: 55 * time.Second}},
		{"forget gives back the slot of a job that ended",
			func() admissionVerdict {
				q.forget(types.NamespacedName{Namespace: "c", Name: "queued-before-restart"})
				return mustAdmit(t, q, later, capped)
			}, admissionVerdict{Admitted: true, Waited: 50 * time.Second}},
		{"an uncapped class admits at once, and the job never waited",
			func() admissionVerdict {
				return mustAdmit(t, q, admissionTestJob("a", "free", 0, ""), admissionTestClass("uncapped", nil, nil))
			}, admissionVerdict{Admitted: true}},
	} {
		t.Run(s.name, func(t *testing.T) {
			if diff := cmp.Diff(s.want, s.do()); diff != "" {
				t.Errorf("verdict (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAdmissionWaitsForAnEarlierJobOfAnotherNamespace(t *testing.T) {
	capped := admissionTestClass("capped", ptr.To[int32](1), nil)
	early := admissionTestJob("a", "early", 1, ejv1.PhasePending)
	late := admissionTestJob("b", "late", 2, ejv1.PhasePending)
	q := newAdmissionQueue(fakeAdmissionCache(classPod("x", "running", "capped", corev1.PodRunning), early, late), clocktesting.NewFakeClock(queueEpoch))
	mustAdmit(t, q, early, capped)
	// The running Pod finishes.
	q.reader = fakeAdmissionCache(classPod("x", "running", "capped", corev1.PodSucceeded), early, late)
	if got := mustAdmit(t, q, late, capped); got.Admitted {
		t.Errorf("the later job was admitted while the earlier one waits")
	}
	if got := mustAdmit(t, q, early, capped); !got.Admitted {
		t.Errorf("the earlier job was refused the free slot")
	}
}

func TestConcurrentWorkersNeverShareTheLastSlot(t *testing.T) {
	capped := admissionTestClass("capped", ptr.To[int32](3), nil)
	objects := []client.Object{classPod("a", "p1", "capped", corev1.PodRunning), classPod("a", "p2", "capped", corev1.PodPending)}
	var jobs []*ejv1.ExtractionJob
	for i := range 64 {
		job := admissionTestJob("ns", fmt.Sprintf("job-%02d", i), 0, ejv1.PhasePending)
		jobs = append(jobs, job)
		objects = append(objects, job)
	}
	q := newAdmissionQueue(fakeAdmissionCache(objects...), clocktesting.NewFakeClock(queueEpoch))
	var mu sync.Mutex
	var admitted []string
	var wg sync.WaitGroup
	for _, job := range jobs {
		wg.Go(func() {
			verdict, err := q.admit(context.Background(), job, capped)
			if err != nil {
				t.Error(err)
			}
			if verdict.Admitted {
				mu.Lock()
				admitted = append(admitted, job.Name)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(admitted) != 1 {
		t.Errorf("admitted %v into one free slot", admitted)
	}
}

// recordingQueue records what is added to it, as the job controller's priority queue.
type recordingQueue struct {
	priorityqueue.PriorityQueue[reconcile.Request]
	added map[reconcile.Request]int
}

func (r *recordingQueue) AddWithOpts(o priorityqueue.AddOpts, items ...reconcile.Request) {
	for _, item := range items {
		r.added[item] = ptr.Deref(o.Priority, 0)
	}
}

func TestAFinishedPodWakesAsManyHeadsAsSlotsAreFree(t *testing.T) {
	capped := admissionTestClass("capped", ptr.To[int32](2), nil)
	var objects []client.Object
	var jobs []*ejv1.ExtractionJob
	for i := range 5 {
		job := admissionTestJob("ns", fmt.Sprintf("job-%d", i), i, ejv1.PhasePending)
		jobs = append(jobs, job)
		objects = append(objects, job)
	}
	objects = append(objects, capped, classPod("ns", "p1", "capped", corev1.PodRunning), classPod("ns", "p2", "capped", corev1.PodRunning))
	q := newAdmissionQueue(fakeAdmissionCache(objects...), clocktesting.NewFakeClock(queueEpoch))
	for _, job := range slices.Backward(jobs) {
		if mustAdmit(t, q, job, capped).Admitted {
			t.Fatalf("%s was admitted into a full class", job.Name)
		}
	}

	// Both Pods finish; the cache shows the first of them.
	cache := q.reader.(client.WithWatch)
	p1 := classPod("ns", "p1", "capped", corev1.PodRunning)
	if err := cache.Delete(context.Background(), p1); err != nil {
		t.Fatal(err)
	}
	wq := &recordingQueue{added: map[reconcile.Request]int{}}
	q.podSeen(context.Background(), wq, p1, nil)

	want := map[reconcile.Request]int{{NamespacedName: types.NamespacedName{Namespace: "ns", Name: "job-0"}}: dueRetryPriority}
	if diff := cmp.Diff(want, wq.added); diff != "" {
		t.Errorf("woken (-want +got):\n%s", diff)
	}
}

func TestJobsThatWaitedForTheirClassStartFirstComeFirstServed(t *testing.T) {
	capped := admissionTestClass("capped", ptr.To[int32](1), nil)
	first := admissionTestJob("a", "first", 1, ejv1.PhasePending)
	second := admissionTestJob("b", "second", 2, ejv1.PhasePending)
	third := admissionTestJob("a", "third", 3, ejv1.PhasePending)
	q := newAdmissionQueue(fakeAdmissionCache(first, second, third), clocktesting.NewFakeClock(queueEpoch))
	// The class appears; its watch hands over the jobs that waited for it,
	// and their reconciles then run in any order.
	q.expectWaiting(capped, []ejv1.ExtractionJob{*third, *first, *second})
	for _, later := range []*ejv1.ExtractionJob{third, second} {
		if got := mustAdmit(t, q, later, capped); got.Admitted {
			t.Errorf("%s took the slot before the job that waited longest", later.Name)
		}
	}
	if got := mustAdmit(t, q, first, capped); !got.Admitted {
		t.Errorf("the job that waited longest was refused the free slot")
	}
}
