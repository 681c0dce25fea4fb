// Package workload is what the benchmark asks of every side: the jobs, each
// with a plan for how its attempts end, and how a job's state is read.
package workload

import (
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
	"github.com/pybase/extraction-operator/test/harness/builders"
	"github.com/pybase/extraction-operator/test/harness/sim"
)

// Namespace holds every object of a run.
const Namespace = "bench"

// Scheme knows the built-in types and ExtractionJobs.
var Scheme = runtime.NewScheme()

func init() {
	utilruntime.Must(clientgoscheme.AddToScheme(Scheme))
	utilruntime.Must(ejv1.AddToScheme(Scheme))
}

// Image is never pulled: only the simulated kubelet runs.
const Image = "registry.example/extractor:bench"

// MaxRetries is the retry budget of both sides: the operator's default
// maxRetries and the Job's backoffLimit.
const MaxRetries = 3

// maxDisruptions is the CRD's default disruption budget, which
// builders.WithRetryPolicy wants spelt out.
const maxDisruptions = 5

// ExtractionJob is a job for the operator (and the API-ceiling driver):
// defaults everywhere except a backoff base of 1 s, as scenario 2 asks.
func ExtractionJob(name string, plan Plan) *ejv1.ExtractionJob {
	return extractionJob(name, plan.Sim())
}

func extractionJob(name string, plan sim.Plan, opts ...builders.JobOption) *ejv1.ExtractionJob {
	return builders.ExtractionJob(Namespace, name, plan, append([]builders.JobOption{
		builders.WithSource("s3://bench/" + name + ".pdf"),
		builders.WithRetryPolicy(MaxRetries, maxDisruptions, ejv1.Backoff{Base: metav1.Duration{Duration: time.Second}}),
	}, opts...)...)
}

// BatchJob is the same work as a batch/v1 Job with the same retry budget;
// its podFailurePolicy fails the Job at once on the permanent error's exit
// code, as the operator does on CorruptedFile.
func BatchJob(name string, plan Plan) *batchv1.Job {
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: Namespace},
		Spec: batchv1.JobSpec{
			Parallelism:  ptr.To[int32](1),
			Completions:  ptr.To[int32](1),
			BackoffLimit: ptr.To[int32](MaxRetries),
			PodFailurePolicy: &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{{
				Action: batchv1.PodFailurePolicyActionFailJob,
				OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{
					ContainerName: ptr.To(ExtractorContainer),
					Operator:      batchv1.PodFailurePolicyOnExitCodesOpIn,
					Values:        []int32{sim.PermanentExitCode},
				},
			}}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Annotations: plan.Sim().Annotations()},
				Spec:       ExtractorPodSpec(name, 1),
			},
		},
	}
}

// ExtractorContainer is the name of the one container of every attempt Pod.
const ExtractorContainer = "extractor"

// ExtractorPodSpec resembles the operator's attempt Pod (same container,
// environment and security settings), so that both sides' Pods weigh the
// same in the API server and in the caches.
func ExtractorPodSpec(name string, attempt int) corev1.PodSpec {
	return corev1.PodSpec{
		RestartPolicy:                corev1.RestartPolicyNever,
		AutomountServiceAccountToken: ptr.To(false),
		EnableServiceLinks:           ptr.To(false),
		SecurityContext: &corev1.PodSecurityContext{
			RunAsNonRoot:   ptr.To(true),
			RunAsUser:      ptr.To[int64](65532),
			RunAsGroup:     ptr.To[int64](65532),
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
		Containers: []corev1.Container{{
			Name:  ExtractorContainer,
			Image: Image,
			Env: []corev1.EnvVar{
				{Name: "EXTRACTION_FORMAT", Value: "pdf"},
				{Name: "EXTRACTION_SOURCE_URL", Value: "s3://bench/" + name + ".pdf"},
				{Name: "EXTRACTION_OPTIONS", Value: "{}"},
				{Name: "EXTRACTION_ATTEMPT", Value: "1"},
			},
			TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
			SecurityContext: &corev1.SecurityContext{
				AllowPrivilegeEscalation: ptr.To(false),
				ReadOnlyRootFilesystem:   ptr.To(true),
				Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			},
			VolumeMounts: []corev1.VolumeMount{{Name: "scratch", MountPath: "/tmp"}},
		}},
		Volumes: []corev1.Volume{{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
	}
}

// JobState is what the harness reads off a job, the same way for every side.
type JobState struct {
	Terminal, Succeeded bool
	// Queued: the job waits for a free slot in its ExtractorClass.
	Queued bool
	// Step names the job's state in a watch event: the operator's phase and
	// Ready reason; empty for a batch/v1 Job.
	Step string
	// RetryAttempt and RetryAt are set while the job waits for a retry: the
	// attempt that runs next, and the time the controller promised for it.
	RetryAttempt int
	RetryAt      time.Time
}

// ExtractionJobState reads an ExtractionJob.
func ExtractionJobState(obj client.Object) JobState {
	job := obj.(*ejv1.ExtractionJob)
	st := JobState{
		Terminal:  job.Status.Phase == ejv1.PhaseSucceeded || job.Status.Phase == ejv1.PhaseFailed,
		Succeeded: job.Status.Phase == ejv1.PhaseSucceeded,
		Queued:    job.Status.Phase == ejv1.PhaseQueued,
		Step:      string(job.Status.Phase),
	}
	if ready := meta.FindStatusCondition(job.Status.Conditions, ejv1.ConditionReady); ready != nil {
		st.Step += "/" + ready.Reason
	}
	if job.Status.Phase == ejv1.PhaseRetrying && job.Status.NextRetryAt != nil {
		st.RetryAttempt, st.RetryAt = int(job.Status.Attempt)+1, job.Status.NextRetryAt.Time
	}
	return st
}

// BatchJobState reads a batch/v1 Job.
func BatchJobState(obj client.Object) JobState {
	job := obj.(*batchv1.Job)
	var st JobState
	for _, c := range job.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			continue
		}
		switch c.Type {
		case batchv1.JobComplete:
			st.Terminal, st.Succeeded = true, true
		case batchv1.JobFailed:
			st.Terminal = true
		}
	}
	return st
}
