package main

import (
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
)

// benchImage is never pulled: no kubelet runs.
const benchImage = "registry.example/extractor:bench"

// maxRetries is the retry budget of both sides: the operator's default
// maxRetries and the Job's backoffLimit.
const maxRetries = 3

// extractionJob is a job for the operator (and the API-ceiling driver):
// defaults everywhere except a backoff base of 1 s, as scenario 2 asks.
func extractionJob(name string, plan Plan) *ejv1.ExtractionJob {
	return &ejv1.ExtractionJob{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: benchNamespace},
		Spec: ejv1.ExtractionJobSpec{
			Format: ejv1.FormatPDF,
			Source: ejv1.Source{URL: "s3://bench/" + name + ".pdf"},
			RetryPolicy: ejv1.RetryPolicy{
				MaxRetries: ptr.To[int32](maxRetries),
				Backoff:    ejv1.Backoff{Base: metav1.Duration{Duration: time.Second}},
			},
			PodTemplate: &ejv1.PodTemplate{Metadata: ejv1.PodTemplateMetadata{Labels: map[string]string{planLabel: string(plan)}}},
		},
	}
}

// batchJob is the same work as a batch/v1 Job with the same retry budget;
// its podFailurePolicy fails the Job at once on the permanent error's exit
// code, as the operator does on CorruptedFile.
func batchJob(name string, plan Plan) *batchv1.Job {
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: benchNamespace},
		Spec: batchv1.JobSpec{
			Parallelism:  ptr.To[int32](1),
			Completions:  ptr.To[int32](1),
			BackoffLimit: ptr.To[int32](maxRetries),
			PodFailurePolicy: &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{{
				Action: batchv1.PodFailurePolicyActionFailJob,
				OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{
					ContainerName: ptr.To(extractorContainer),
					Operator:      batchv1.PodFailurePolicyOnExitCodesOpIn,
					Values:        []int32{exitPermanent},
				},
			}}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{planLabel: string(plan)}},
				Spec:       extractorPodSpec(name, 1),
			},
		},
	}
}

const extractorContainer = "extractor"

// extractorPodSpec resembles the operator's attempt Pod (same container,
// environment and security settings), so that both sides' Pods weigh the
// same in the API server and in the caches.
func extractorPodSpec(name string, attempt int) corev1.PodSpec {
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
			Name:  extractorContainer,
			Image: benchImage,
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
	// RetryAttempt and RetryAt are set while the job waits for a retry: the
	// attempt that runs next, and the time the controller promised for it.
	RetryAttempt int
	RetryAt      time.Time
}

func extractionJobState(obj client.Object) JobState {
	job := obj.(*ejv1.ExtractionJob)
	st := JobState{
		Terminal:  job.Status.Phase == ejv1.PhaseSucceeded || job.Status.Phase == ejv1.PhaseFailed,
		Succeeded: job.Status.Phase == ejv1.PhaseSucceeded,
	}
	if job.Status.Phase == ejv1.PhaseRetrying && job.Status.NextRetryAt != nil {
		st.RetryAttempt, st.RetryAt = int(job.Status.Attempt)+1, job.Status.NextRetryAt.Time
	}
	return st
}

func batchJobState(obj client.Object) JobState {
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
