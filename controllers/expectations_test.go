package controllers

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
)

func expectationsJob(uid types.UID, resourceVersion string) *ejv1.ExtractionJob {
	return &ejv1.ExtractionJob{ObjectMeta: metav1.ObjectMeta{
		Namespace: "plant-a", Name: "sheet-12", UID: uid, ResourceVersion: resourceVersion}}
}

func expectationsPod(name, resourceVersion string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "plant-a", Name: name, ResourceVersion: resourceVersion}}
}

func assertTracked(t *testing.T, e *ownWriteExpectations, want int) {
	t.Helper()
	if got := len(e.jobs); got != want {
		t.Errorf("expectations hold %d jobs, want %d: %+v", got, want, e.jobs)
	}
}

// TestExpectationsOfACancelledJobEndWithIt follows the writes of a cancel:
// the status write, and the release of the deleted attempt Pod, which then
// disappears. Nothing is left once the cache has shown the new job and the
// Pod is gone.
func TestExpectationsOfACancelledJobEndWithIt(t *testing.T) {
	var e ownWriteExpectations
	before := expectationsJob("uid-1", "100")
	e.expectJobWrite(before, "100")
	pod := expectationsPod("sheet-12-1", "200")
	e.expectPodWrite(before, pod, "200")

	if !e.jobCacheBehind(before) {
		t.Error("the cache still shows the job before its status write, and the reconcile goes ahead")
	}
	if !e.podCacheBehind(before, pod) {
		t.Error("the cache still shows the Pod before its release, and the reconcile releases it again")
	}

	after := expectationsJob("uid-1", "101")
	if e.jobCacheBehind(after) {
		t.Error("the cache shows the job's new version, and the reconcile waits")
	}
	assertTracked(t, &e, 1)
	e.podGone(after, pod.Name)
	assertTracked(t, &e, 0)
}

// TestExpectationsOfAReleasedPodEndWhenTheCacheShowsIt covers a Pod that
// stays after its release (a succeeded Pod nobody deletes).
func TestExpectationsOfAReleasedPodEndWhenTheCacheShowsIt(t *testing.T) {
	var e ownWriteExpectations
	job := expectationsJob("uid-1", "100")
	e.expectPodWrite(job, expectationsPod("sheet-12-1", "200"), "200")
	if e.podCacheBehind(job, expectationsPod("sheet-12-1", "201")) {
		t.Error("the cache shows the released Pod, and the reconcile waits")
	}
	assertTracked(t, &e, 0)
}

// TestExpectationsOfADeletedJobAreDropped: a job that is gone leaves nothing
// behind, whatever writes the cache never showed.
func TestExpectationsOfADeletedJobAreDropped(t *testing.T) {
	var e ownWriteExpectations
	job := expectationsJob("uid-1", "100")
	e.expectJobWrite(job, "100")
	e.expectPodWrite(job, expectationsPod("sheet-12-1", "200"), "200")
	e.expectPodWrite(job, expectationsPod("sheet-12-2", "300"), "300")
	e.forgetJob(types.NamespacedName{Namespace: job.Namespace, Name: job.Name})
	assertTracked(t, &e, 0)
}

// TestExpectationsOfAJobDoNotHoldBackItsSuccessor: a job recreated under the
// same name is a new job, whose cache is not behind its predecessor's writes.
func TestExpectationsOfAJobDoNotHoldBackItsSuccessor(t *testing.T) {
	var e ownWriteExpectations
	old := expectationsJob("uid-1", "100")
	e.expectJobWrite(old, "100")
	e.expectPodWrite(old, expectationsPod("sheet-12-1", "200"), "200")

	successor := expectationsJob("uid-2", "100")
	if e.jobCacheBehind(successor) {
		t.Error("the successor waits for its predecessor's write")
	}
	if e.podCacheBehind(successor, expectationsPod("sheet-12-1", "200")) {
		t.Error("the successor waits for its predecessor's Pod")
	}
	assertTracked(t, &e, 0)
}
