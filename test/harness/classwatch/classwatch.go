// Package classwatch follows the attempt Pods and the jobs of one
// ExtractorClass from the API server and checks its cap at every event: the
// class's Pods that exist and have not finished never outnumber maxRunning
// (or maxRunningPerNamespace in one namespace), and no job waits Queued
// while a slot it may take is free.
//
// It lists and then watches from the list's resourceVersion, without an
// informer: an informer that relists after a broken watch (a kube-apiserver
// restart) hands over the new list one object at a time, so a Pod created
// while the watch was down could be counted before the deletion of the Pod
// it replaced. A list is one consistent snapshot, checked as a whole, and
// every watch event after it is one step of the API server's history.
package classwatch

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
)

// Options configure a Watch.
type Options struct {
	// Config reaches the API server; the Watch reads Pods and ExtractionJobs
	// in every namespace.
	Config *rest.Config
	// Class is the class to follow, with the caps to check.
	Class *ejv1.ExtractorClass
	// Grace is how long a job may stay Queued while a slot it may take is
	// free before that counts as a violation: the operator's own watch must
	// deliver the freed slot, a worker reconcile the queue's head, and its
	// Pod create and status write reach this watch. 2 s by default.
	Grace time.Duration
}

// PodEvent is one step of the class's Pods, in the API server's order.
type PodEvent struct {
	At        time.Time // when the Watch received it
	Namespace string
	Pod       string
	Job       string // the controlling job's name
	JobUID    types.UID
	Attempt   int
	// Kind is Started (first seen not finished), Finished (phase Succeeded
	// or Failed) or Gone (deleted).
	Kind EventKind
	// InFlight is the class's count after the event.
	InFlight int
	// Relist marks the events derived from a relist's snapshot.
	Relist bool
}

// EventKind is what happened to a Pod.
type EventKind string

const (
	Started  EventKind = "Started"
	Finished EventKind = "Finished"
	Gone     EventKind = "Gone"
)

// Report is what a Watch checked.
type Report struct {
	// Events is how many Pod states the cap was checked at (watch events and
	// Pods in relist snapshots).
	Events int
	// Peak is the most Pods of the class in flight at once; PeakPerNamespace
	// the most in one namespace.
	Peak, PeakPerNamespace int
	// Relists counts the lists after the first (after a broken watch).
	Relists int
	// JobsQueued counts the jobs seen in phase Queued.
	JobsQueued int
	// LongestFreeWait is the longest a job stayed Queued, outside excused
	// periods, while a slot it could take was free.
	LongestFreeWait time.Duration
	// Violations of the cap and of the queue.
	Violations []string
	// Timeline is every Pod event, for checks of order.
	Timeline []PodEvent
}

type podState struct {
	namespace string
	name      string
	job       string
	jobUID    types.UID
	attempt   int
	inFlight  bool
}

type jobState struct {
	namespace, name string
	queued          bool
}

// Watch follows one class; Start one, Stop it for the Report.
type Watch struct {
	opts   Options
	client client.WithWatch
	cancel context.CancelFunc
	done   sync.WaitGroup

	mu        sync.Mutex
	pods      map[types.UID]*podState
	jobs      map[types.UID]*jobState
	queuedAny map[types.UID]bool
	// freeSince is, per waiting job, since when a slot it may take is free.
	freeSince map[types.UID]time.Time
	// downSince is, per source of an excuse (the operator, each of the
	// Watch's own streams while it is blind), since when the queue is
	// excused; excused are the closed periods.
	downSince map[string]time.Time
	excused   []period
	waits     []wait
	report    Report
}

type period struct{ from, to time.Time }

type wait struct {
	job      string
	from, to time.Time
}

// Start lists the class's Pods and the jobs and keeps watching them until Stop.
func Start(ctx context.Context, opts Options) (*Watch, error) {
	if opts.Grace == 0 {
		opts.Grace = 2 * time.Second
	}
	scheme := runtime.NewScheme()
	if err := corev1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if err := ejv1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	cl, err := client.NewWithWatch(opts.Config, client.Options{Scheme: scheme})
	if err != nil {
		return nil, err
	}
	w := &Watch{
		opts: opts, client: cl,
		pods: map[types.UID]*podState{}, jobs: map[types.UID]*jobState{},
		queuedAny: map[types.UID]bool{}, freeSince: map[types.UID]time.Time{},
		downSince: map[string]time.Time{},
	}
	ctx, w.cancel = context.WithCancel(ctx)
	podRV, err := w.listPods(ctx, false)
	if err != nil {
		w.cancel()
		return nil, err
	}
	jobRV, err := w.listJobs(ctx)
	if err != nil {
		w.cancel()
		return nil, err
	}
	w.done.Add(2)
	go w.follow(ctx, "pods", podRV, &corev1.PodList{}, w.podSelector(), func(ctx context.Context) (string, error) { return w.listPods(ctx, true) }, w.podEvent)
	go w.follow(ctx, "jobs", jobRV, &ejv1.ExtractionJobList{}, nil, w.listJobs, w.jobEvent)
	return w, nil
}

func (w *Watch) podSelector() []client.ListOption {
	return []client.ListOption{client.MatchingLabels{ejv1.ExtractorClassLabel: w.opts.Class.Name}}
}

// OperatorDown excuses the queue from now on: the operator was killed or
// lost its API server, so nothing can leave the queue.
func (w *Watch) OperatorDown() { w.excuseFrom("operator") }

// OperatorUp ends the excuse at the given time: the operator runs its
// workers again (after a restart) or reaches its API server again.
func (w *Watch) OperatorUp(at time.Time) { w.excuseUntil("operator", at) }

func (w *Watch) excuseFrom(source string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, down := w.downSince[source]; !down {
		w.downSince[source] = time.Now()
	}
}

func (w *Watch) excuseUntil(source string, at time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if since, down := w.downSince[source]; down {
		w.excused = append(w.excused, period{since, at})
		delete(w.downSince, source)
	}
}

// InFlight is the class's count of Pods in flight now.
func (w *Watch) InFlight() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, _ := w.counts()
	return n
}

// Stop ends the watch and reports what it checked.
func (w *Watch) Stop() Report {
	w.cancel()
	w.done.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	now := time.Now()
	for uid, since := range w.freeSince {
		w.waits = append(w.waits, wait{w.jobKey(uid), since, now})
	}
	w.freeSince = map[types.UID]time.Time{}
	excused := append([]period(nil), w.excused...)
	for _, since := range w.downSince {
		excused = append(excused, period{since, now})
	}
	for _, wt := range w.waits {
		longest := longestOutside(wt.from, wt.to, excused)
		w.report.LongestFreeWait = max(w.report.LongestFreeWait, longest)
		if longest > w.opts.Grace {
			w.report.Violations = append(w.report.Violations, fmt.Sprintf(
				"job %s stayed Queued for %s (from %s to %s) while a slot of ExtractorClass %s was free for it, outside the operator's restarts",
				wt.job, longest.Round(time.Millisecond), wt.from.UTC().Format("15:04:05.000"), wt.to.UTC().Format("15:04:05.000"), w.opts.Class.Name))
		}
	}
	w.report.JobsQueued = len(w.queuedAny)
	report := w.report
	report.Timeline = append([]PodEvent(nil), w.report.Timeline...)
	report.Violations = append([]string(nil), w.report.Violations...)
	return report
}

// longestOutside is the longest part of [from, to) that no excused period covers.
func longestOutside(from, to time.Time, excused []period) time.Duration {
	sort.Slice(excused, func(i, k int) bool { return excused[i].from.Before(excused[k].from) })
	var longest time.Duration
	cursor := from
	for _, e := range excused {
		if !e.to.After(cursor) || !e.from.Before(to) {
			continue
		}
		if e.from.After(cursor) {
			longest = max(longest, e.from.Sub(cursor))
		}
		cursor = e.to
	}
	if to.After(cursor) {
		longest = max(longest, to.Sub(cursor))
	}
	return longest
}

// follow watches from rv, and relists when the watch cannot resume: while
// the API server is away, the Watch is blind, and excuses the queue.
func (w *Watch) follow(ctx context.Context, stream string, rv string, list client.ObjectList, opts []client.ListOption, relist func(context.Context) (string, error), apply func(watch.Event)) {
	defer w.done.Done()
	for ctx.Err() == nil {
		watchOpts := append([]client.ListOption{&client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: rv, AllowWatchBookmarks: true}}}, opts...)
		wi, err := w.client.Watch(ctx, list, watchOpts...)
		if err == nil {
			rv, err = w.drain(ctx, wi, rv, apply)
		}
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			continue // the server closed the watch: resume from rv
		}
		w.excuseFrom(stream)
		for ctx.Err() == nil {
			time.Sleep(200 * time.Millisecond)
			if rv, err = relist(ctx); err == nil {
				break
			}
		}
		w.excuseUntil(stream, time.Now())
	}
}

// drain applies a watch's events until it ends, and returns the last
// resourceVersion seen, or an error when the watch must be relisted.
func (w *Watch) drain(ctx context.Context, wi watch.Interface, rv string, apply func(watch.Event)) (string, error) {
	defer wi.Stop()
	for {
		select {
		case <-ctx.Done():
			return rv, nil
		case ev, ok := <-wi.ResultChan():
			if !ok {
				return rv, nil
			}
			if ev.Type == watch.Error {
				err := apierrors.FromObject(ev.Object)
				if status, ok := err.(apierrors.APIStatus); ok && status.Status().Code == http.StatusGone {
					return rv, err
				}
				return rv, errors.Join(errors.New("watch error"), err)
			}
			obj, ok := ev.Object.(client.Object)
			if !ok {
				continue
			}
			rv = obj.GetResourceVersion()
			if ev.Type != watch.Bookmark {
				apply(ev)
			}
		}
	}
}

func (w *Watch) listPods(ctx context.Context, relist bool) (string, error) {
	pods := &corev1.PodList{}
	if err := w.client.List(ctx, pods, w.podSelector()...); err != nil {
		return "", fmt.Errorf("listing the Pods of ExtractorClass %s: %w", w.opts.Class.Name, err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	now := time.Now()
	listed := map[types.UID]bool{}
	// Gone first: the snapshot is one moment, so its Pods replace the
	// vanished ones before anything is counted.
	for i := range pods.Items {
		listed[pods.Items[i].UID] = true
	}
	for uid, p := range w.pods {
		if !listed[uid] {
			delete(w.pods, uid)
			w.record(now, p, Gone, relist)
		}
	}
	for i := range pods.Items {
		w.setPod(now, &pods.Items[i], false, relist)
	}
	w.checkCap(now, "a relisted snapshot")
	w.checkQueue(now)
	if relist {
		w.report.Relists++
	}
	return pods.ResourceVersion, nil
}

func (w *Watch) listJobs(ctx context.Context) (string, error) {
	jobs := &ejv1.ExtractionJobList{}
	if err := w.client.List(ctx, jobs); err != nil {
		return "", fmt.Errorf("listing ExtractionJobs: %w", err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.jobs = map[types.UID]*jobState{}
	for i := range jobs.Items {
		w.setJob(&jobs.Items[i], false)
	}
	w.checkQueue(time.Now())
	return jobs.ResourceVersion, nil
}

func (w *Watch) podEvent(ev watch.Event) {
	pod, ok := ev.Object.(*corev1.Pod)
	if !ok {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	now := time.Now()
	w.setPod(now, pod, ev.Type == watch.Deleted, false)
	w.checkCap(now, fmt.Sprintf("Pod %s/%s %s (resourceVersion %s)", pod.Namespace, pod.Name, ev.Type, pod.ResourceVersion))
	w.checkQueue(now)
}

func (w *Watch) jobEvent(ev watch.Event) {
	job, ok := ev.Object.(*ejv1.ExtractionJob)
	if !ok {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.setJob(job, ev.Type == watch.Deleted)
	w.checkQueue(time.Now())
}

// setPod records a Pod's state and the event it makes.
func (w *Watch) setPod(now time.Time, pod *corev1.Pod, deleted, relist bool) {
	p := w.pods[pod.UID]
	if deleted {
		if p != nil {
			delete(w.pods, pod.UID)
			w.record(now, p, Gone, relist)
		}
		return
	}
	finished := pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
	if p == nil {
		attempt, _ := strconv.Atoi(pod.Labels[ejv1.AttemptLabel])
		p = &podState{namespace: pod.Namespace, name: pod.Name, jobUID: types.UID(pod.Labels[ejv1.JobUIDLabel]), attempt: attempt, inFlight: !finished}
		if owner := metav1.GetControllerOf(pod); owner != nil {
			p.job = owner.Name
		}
		w.pods[pod.UID] = p
		kind := Started
		if finished {
			kind = Finished
		}
		w.record(now, p, kind, relist)
		return
	}
	if p.inFlight && finished {
		p.inFlight = false
		w.record(now, p, Finished, relist)
	}
}

func (w *Watch) record(now time.Time, p *podState, kind EventKind, relist bool) {
	n, _ := w.counts()
	w.report.Events++
	w.report.Timeline = append(w.report.Timeline, PodEvent{
		At: now, Namespace: p.namespace, Pod: p.name, Job: p.job, JobUID: p.jobUID, Attempt: p.attempt,
		Kind: kind, InFlight: n, Relist: relist,
	})
}

func (w *Watch) setJob(job *ejv1.ExtractionJob, deleted bool) {
	if deleted {
		delete(w.jobs, job.UID)
		return
	}
	queued := job.Status.Phase == ejv1.PhaseQueued && job.Status.ExtractorClassName == w.opts.Class.Name
	if queued {
		w.queuedAny[job.UID] = true
	}
	w.jobs[job.UID] = &jobState{namespace: job.Namespace, name: job.Name, queued: queued}
}

// counts is the class's Pods in flight, in all and by namespace.
func (w *Watch) counts() (int, map[string]int) {
	total, byNamespace := 0, map[string]int{}
	for _, p := range w.pods {
		if p.inFlight {
			total++
			byNamespace[p.namespace]++
		}
	}
	return total, byNamespace
}

func (w *Watch) checkCap(now time.Time, after string) {
	total, byNamespace := w.counts()
	w.report.Peak = max(w.report.Peak, total)
	spec := w.opts.Class.Spec
	if spec.MaxRunning != nil && total > int(*spec.MaxRunning) {
		w.report.Violations = append(w.report.Violations, fmt.Sprintf("%d Pods of ExtractorClass %s in flight after %s at %s, more than maxRunning %d",
			total, w.opts.Class.Name, after, now.UTC().Format("15:04:05.000"), *spec.MaxRunning))
	}
	for ns, n := range byNamespace {
		w.report.PeakPerNamespace = max(w.report.PeakPerNamespace, n)
		if spec.MaxRunningPerNamespace != nil && n > int(*spec.MaxRunningPerNamespace) {
			w.report.Violations = append(w.report.Violations, fmt.Sprintf("%d Pods of ExtractorClass %s in flight in namespace %s after %s at %s, more than maxRunningPerNamespace %d",
				n, w.opts.Class.Name, ns, after, now.UTC().Format("15:04:05.000"), *spec.MaxRunningPerNamespace))
		}
	}
}

// checkQueue opens and closes the waits of Queued jobs that have no Pod in
// flight while a slot they may take is free.
func (w *Watch) checkQueue(now time.Time) {
	total, byNamespace := w.counts()
	withPod := map[types.UID]bool{}
	for _, p := range w.pods {
		if p.inFlight {
			withPod[p.jobUID] = true
		}
	}
	spec := w.opts.Class.Spec
	for uid, j := range w.jobs {
		free := j.queued && !withPod[uid] &&
			(spec.MaxRunning == nil || total < int(*spec.MaxRunning)) &&
			(spec.MaxRunningPerNamespace == nil || byNamespace[j.namespace] < int(*spec.MaxRunningPerNamespace))
		since, waiting := w.freeSince[uid]
		switch {
		case free && !waiting:
			w.freeSince[uid] = now
		case !free && waiting:
			delete(w.freeSince, uid)
			w.waits = append(w.waits, wait{w.jobKey(uid), since, now})
		}
	}
	for uid, since := range w.freeSince {
		if _, ok := w.jobs[uid]; !ok {
			delete(w.freeSince, uid)
			w.waits = append(w.waits, wait{string(uid), since, now})
		}
	}
}

func (w *Watch) jobKey(uid types.UID) string {
	if j, ok := w.jobs[uid]; ok {
		return j.namespace + "/" + j.name
	}
	return string(uid)
}
