package workload

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
)

// DefaultClassName is the default ExtractorClass of every run's API server,
// which the jobs that name no class run in.
const DefaultClassName = "bench-default"

// QueueClassName is the class of the queue scenario's jobs.
const QueueClassName = "bench-queue"

// DefaultClass is the default class for the benchmark's PDF jobs, with the
// image no one pulls. Only the operator reads it; every side's API server
// gets it all the same, so that they all hold the same objects.
func DefaultClass() *ejv1.ExtractorClass {
	return &ejv1.ExtractorClass{
		ObjectMeta: metav1.ObjectMeta{Name: DefaultClassName},
		Spec:       ejv1.ExtractorClassSpec{Formats: []ejv1.Format{ejv1.FormatPDF}, Default: true, Image: Image},
	}
}

// QueueClass is the queue scenario's class: not the default, capped at
// maxRunning attempts at once, or uncapped when maxRunning is 0.
func QueueClass(maxRunning int32) *ejv1.ExtractorClass {
	class := &ejv1.ExtractorClass{
		ObjectMeta: metav1.ObjectMeta{Name: QueueClassName},
		Spec:       ejv1.ExtractorClassSpec{Formats: []ejv1.Format{ejv1.FormatPDF}, Image: Image},
	}
	if maxRunning > 0 {
		class.Spec.MaxRunning = ptr.To(maxRunning)
	}
	return class
}

// QueueJob is a job of the queue class whose attempt succeeds after
// runSeconds: long enough that maxRunning, not the operator, limits how
// many attempts exist at once.
func QueueJob(name string, runSeconds int) *ejv1.ExtractionJob {
	plan := PlanSucceed.Sim()
	plan.RunSeconds = []int{runSeconds}
	job := ExtractionJob(name, PlanSucceed)
	job.Spec.PodTemplate.Metadata.Annotations = plan.Annotations()
	job.Spec.ExtractorClassName = QueueClassName
	return job
}
