package controllers

import (
	"testing"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
)

// A job whose status write was lost after its Pod was created, and which is
// then cancelled, adopts the Pod without choosing a class again: the class
// it records is the one the Pod runs in, from the Pod's label.
func TestAnAdoptedPodRecordsTheClassItRunsIn(t *testing.T) {
	job := pendingJob()
	pod := attemptPodOf(1)
	pod.Labels = map[string]string{ejv1.ExtractorClassLabel: "capped"}
	s := &reconcileScope{job: job, now: transitionNow}
	s.attemptAdopted(pod, 1)
	if got := job.Status.ExtractorClassName; got != "capped" {
		t.Errorf("status.extractorClassName %q after adopting a Pod of class capped, want capped", got)
	}
}
