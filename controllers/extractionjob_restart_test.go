package controllers

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
)

// After a restart the whole initial list is queued at low priority; a
// Retrying job is queued ahead of it, so that a retry that fell due while no
// operator ran does not wait for every other job.
func TestARetryingJobOfTheInitialListIsQueuedAheadOfTheRest(t *testing.T) {
	named := func(name string, phase ejv1.Phase) *ejv1.ExtractionJob {
		job := transitionJob()
		job.Name, job.Status.Phase = name, phase
		return job
	}
	q := priorityqueue.New[reconcile.Request]("test")
	defer q.ShutDown()
	listed := handler.WithLowPriorityWhenUnchanged(&handler.EnqueueRequestForObject{})
	for _, job := range []*ejv1.ExtractionJob{
		named("running", ejv1.PhaseRunning), named("due-retry", ejv1.PhaseRetrying), named("succeeded", ejv1.PhaseSucceeded),
	} {
		e := event.CreateEvent{Object: job, IsInInitialList: true}
		listed.Create(context.Background(), e, q)
		retriesFirstOnStart.Create(context.Background(), e, q)
	}
	retriesFirstOnStart.Create(context.Background(), event.CreateEvent{Object: named("created-later", ejv1.PhaseRetrying)}, q)

	type queued struct {
		Name     string
		Priority int
	}
	var got []queued
	for q.Len() > 0 {
		req, priority, _ := q.GetWithPriority()
		got = append(got, queued{req.Name, priority})
		q.Done(req)
	}
	want := []queued{{"due-retry", dueRetryPriority}, {"running", handler.LowPriority}, {"succeeded", handler.LowPriority}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("queue order (-want +got):\n%s", diff)
	}
}
