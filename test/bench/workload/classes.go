package workload

import (
	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
	"github.com/pybase/extraction-operator/test/harness/builders"
)

// QueueClassName is the class of the queue scenario's jobs.
const QueueClassName = "bench-queue"

// QueueClass is the queue scenario's class: not the default, capped at
// maxRunning attempts at once, or uncapped when maxRunning is 0.
func QueueClass(maxRunning int32) *ejv1.ExtractorClass {
	opts := []builders.ClassOption{builders.WithFormats(ejv1.FormatPDF)}
	if maxRunning > 0 {
		opts = append(opts, builders.WithMaxRunning(maxRunning))
	}
	return builders.ExtractorClass(QueueClassName, Image, opts...)
}

// QueueJob is a job of the queue class whose attempt succeeds after
// runSeconds: long enough that maxRunning, not the operator, limits how
// many attempts exist at once.
func QueueJob(name string, runSeconds int) *ejv1.ExtractionJob {
	plan := PlanSucceed.Sim()
	plan.RunSeconds = []int{runSeconds}
	return extractionJob(name, plan, builders.WithClass(QueueClassName))
}
