package main

import (
	"cmp"
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
)

// readyAt is when a job became ready to start its next attempt, the time the
// queue orders jobs by: its creation for a first attempt, else the
// nextRetryAt it waited for (a Queued job keeps it). A job past its first
// attempt without a nextRetryAt, which a manual retry can leave, counts from
// its creation.
func readyAt(job *ejv1.ExtractionJob) time.Time {
	if job.Status.Attempt == 0 || job.Status.NextRetryAt == nil {
		return job.CreationTimestamp.Time
	}
	return job.Status.NextRetryAt.Time
}

// compareQueueOrder orders jobs as the operator's queue admits them: first
// ready, first served; creation times have whole seconds, so ties go by
// namespace, then name.
func compareQueueOrder(a, b *ejv1.ExtractionJob) int {
	return cmp.Or(readyAt(a).Compare(readyAt(b)), cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
}

// queuePosition is where a Queued job stands among the Queued jobs of its
// class that the user may list.
type queuePosition struct {
	// position counts from 1; of is how many jobs were compared, the job included.
	position, of int
	// namespaceOnly is the namespace the count was limited to, when RBAC
	// refused a list across all namespaces.
	namespaceOnly string
	// forbidden: RBAC refused even the list in the job's namespace.
	forbidden bool
}

func (p queuePosition) String() string {
	switch {
	case p.forbidden:
		return fmt.Sprintf("position unknown: you may not list ExtractionJobs in namespace %s", p.namespaceOnly)
	case p.namespaceOnly != "":
		return fmt.Sprintf("position %d among the Queued jobs you may list (namespace %s only)", p.position, p.namespaceOnly)
	}
	return fmt.Sprintf("position %d of %d Queued jobs in the class (first come, first served)", p.position, p.of)
}

// findQueuePosition counts the Queued jobs of job's class that the queue
// admits before it, across all namespaces, or only in the job's namespace
// when the user may not list the others. It does not model
// maxRunningPerNamespace: a job of a namespace at its cap is skipped by the
// queue, so the job may start sooner than its position says.
func findQueuePosition(ctx context.Context, c client.Client, job *ejv1.ExtractionJob, chunkSize int64) (queuePosition, error) {
	pos := queuePosition{position: 1, of: 1}
	count := func(other *ejv1.ExtractionJob) {
		if other.Status.Phase != ejv1.PhaseQueued || other.Status.ExtractorClassName != job.Status.ExtractorClassName ||
			(other.Namespace == job.Namespace && other.Name == job.Name) {
			return
		}
		pos.of++
		if compareQueueOrder(other, job) < 0 {
			pos.position++
		}
	}
	queued := client.MatchingFields{"status.phase": string(ejv1.PhaseQueued)}
	err := eachJob(ctx, c, "", chunkSize, count, queued)
	if !apierrors.IsForbidden(err) {
		return pos, err
	}
	pos = queuePosition{position: 1, of: 1, namespaceOnly: job.Namespace}
	err = eachJob(ctx, c, job.Namespace, chunkSize, count, queued)
	if apierrors.IsForbidden(err) {
		pos.forbidden = true
		return pos, nil
	}
	return pos, err
}

// eachJob lists the jobs of namespace ("" for all) page by page, chunkSize a
// page, and hands each to fn.
func eachJob(ctx context.Context, c client.Client, namespace string, chunkSize int64, fn func(*ejv1.ExtractionJob), opts ...client.ListOption) error {
	opts = append(opts, client.Limit(chunkSize))
	if namespace != "" {
		opts = append(opts, client.InNamespace(namespace))
	}
	for cont := ""; ; {
		list := &ejv1.ExtractionJobList{}
		if err := c.List(ctx, list, append(opts, client.Continue(cont))...); err != nil {
			return err
		}
		for i := range list.Items {
			fn(&list.Items[i])
		}
		if cont = list.Continue; cont == "" {
			return nil
		}
	}
}
