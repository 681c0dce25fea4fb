package controllers

import (
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
)

// ownWriteExpectations remember, per job, the resourceVersions that the
// operator's latest writes replaced: the job's own (its status write) and
// those of its attempt Pods (their release). While the cache still shows such
// a version, a reconcile would act on the state before the write (and create
// a Pod twice, or release a Pod twice and lose the race); it waits instead
// for the watch event of its own write, which triggers the next reconcile.
//
// Like the upstream Job controller's uidTrackingExpectations, they are keyed
// by job and dropped with it, so they hold entries only for live jobs that
// have writes the cache has not shown yet.
type ownWriteExpectations struct {
	mu   sync.Mutex
	jobs map[types.NamespacedName]*jobWrites
}

// jobWrites are one job's expected writes.
type jobWrites struct {
	// uid tells the job from a successor created under the same name.
	uid types.UID
	// replaced is the job's resourceVersion that its latest status write
	// replaced, "" once the cache showed a newer one.
	replaced string
	// pods maps the name of an attempt's Pod to the resourceVersion that its
	// latest release replaced.
	pods map[string]string
}

// expectJobWrite remembers that the job's status write replaced that version.
func (e *ownWriteExpectations) expectJobWrite(job *ejv1.ExtractionJob, replaced string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.writesOf(job, true).replaced = replaced
}

// expectPodWrite remembers that a write of the job's Pod replaced that version.
func (e *ownWriteExpectations) expectPodWrite(job *ejv1.ExtractionJob, pod *corev1.Pod, replaced string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	w := e.writesOf(job, true)
	if w.pods == nil {
		w.pods = map[string]string{}
	}
	w.pods[pod.Name] = replaced
}

// jobCacheBehind reports whether the cached job is still the version that
// the operator's latest status write of it replaced; once it is not, that
// write is forgotten.
func (e *ownWriteExpectations) jobCacheBehind(job *ejv1.ExtractionJob) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	w := e.writesOf(job, false)
	if w == nil || w.replaced == "" {
		return false
	}
	if w.replaced == job.ResourceVersion {
		return true
	}
	w.replaced = ""
	e.dropIfDone(job)
	return false
}

// podCacheBehind reports the same of one of the job's Pods.
func (e *ownWriteExpectations) podCacheBehind(job *ejv1.ExtractionJob, pod *corev1.Pod) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	w := e.writesOf(job, false)
	if w == nil {
		return false
	}
	replaced, ok := w.pods[pod.Name]
	if !ok {
		return false
	}
	if replaced == pod.ResourceVersion {
		return true
	}
	delete(w.pods, pod.Name)
	e.dropIfDone(job)
	return false
}

// podGone forgets the writes of a Pod of the job that no longer exists.
func (e *ownWriteExpectations) podGone(job *ejv1.ExtractionJob, podName string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if w := e.writesOf(job, false); w != nil {
		delete(w.pods, podName)
		e.dropIfDone(job)
	}
}

// forgetJob drops everything about a job that is gone or being deleted.
func (e *ownWriteExpectations) forgetJob(key types.NamespacedName) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.jobs, key)
}

// writesOf is the job's entry; a successor's entry is dropped. With create,
// a missing entry is made.
func (e *ownWriteExpectations) writesOf(job *ejv1.ExtractionJob, create bool) *jobWrites {
	key := types.NamespacedName{Namespace: job.Namespace, Name: job.Name}
	w, ok := e.jobs[key]
	if ok && w.uid != job.UID {
		delete(e.jobs, key)
		w, ok = nil, false
	}
	if !ok && create {
		if e.jobs == nil {
			e.jobs = map[types.NamespacedName]*jobWrites{}
		}
		w = &jobWrites{uid: job.UID}
		e.jobs[key] = w
	}
	return w
}

func (e *ownWriteExpectations) dropIfDone(job *ejv1.ExtractionJob) {
	key := types.NamespacedName{Namespace: job.Namespace, Name: job.Name}
	if w := e.jobs[key]; w != nil && w.replaced == "" && len(w.pods) == 0 {
		delete(e.jobs, key)
	}
}
