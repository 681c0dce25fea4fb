// Package builders makes the objects the tests create: namespaces,
// ExtractorClasses, ExtractionJobs whose Pods play a simulation plan, and
// bare attempt Pods.
package builders

import (
	"strconv"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
	"github.com/pybase/extraction-operator/test/harness/sim"
)

// Namespace is a namespace with the given name and labels. A name ending in
// "-" is a prefix: the API server completes it.
func Namespace(name string, labels map[string]string) *corev1.Namespace {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Labels: labels}}
	if name != "" && name[len(name)-1] == '-' {
		ns.GenerateName = name
	} else {
		ns.Name = name
	}
	return ns
}

// RestrictedLabels make a namespace enforce the "restricted" Pod Security
// Standard, so every attempt Pod created there must meet it.
var RestrictedLabels = map[string]string{"pod-security.kubernetes.io/enforce": "restricted"}

// JobOption changes an ExtractionJob that ExtractionJob builds.
type JobOption func(*ejv1.ExtractionJob)

// ExtractionJob is a PDF extraction of s3://test/NAME.pdf whose Pods carry
// the plan's annotations, so the simulated kubelet or KWOK plays it.
func ExtractionJob(namespace, name string, plan sim.Plan, opts ...JobOption) *ejv1.ExtractionJob {
	job := &ejv1.ExtractionJob{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: ejv1.ExtractionJobSpec{
			Format: ejv1.FormatPDF,
			Source: ejv1.Source{URL: "s3://test/" + name + ".pdf"},
			PodTemplate: &ejv1.PodTemplate{Metadata: ejv1.PodTemplateMetadata{
				Annotations: plan.Annotations(),
			}},
		},
	}
	for _, opt := range opts {
		opt(job)
	}
	return job
}

// WithRetryPolicy sets the retry budgets and the backoff.
func WithRetryPolicy(maxRetries, maxDisruptions int32, backoff ejv1.Backoff) JobOption {
	return func(job *ejv1.ExtractionJob) {
		job.Spec.RetryPolicy.MaxRetries = ptr.To(maxRetries)
		job.Spec.RetryPolicy.MaxDisruptions = ptr.To(maxDisruptions)
		job.Spec.RetryPolicy.Backoff = backoff
	}
}

// WithClass names the ExtractorClass the job runs in
// (spec.extractorClassName); without it the job gets its format's default.
func WithClass(name string) JobOption {
	return func(job *ejv1.ExtractionJob) { job.Spec.ExtractorClassName = name }
}

// WithSource sets the source URL.
func WithSource(url string) JobOption {
	return func(job *ejv1.ExtractionJob) { job.Spec.Source.URL = url }
}

// ClassOption changes an ExtractorClass that ExtractorClass builds.
type ClassOption func(*ejv1.ExtractorClass)

// ExtractorClass is a class named name that runs image for every format,
// with no cap and not the default, until the options say otherwise.
func ExtractorClass(name, image string, opts ...ClassOption) *ejv1.ExtractorClass {
	class := &ejv1.ExtractorClass{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: ejv1.ExtractorClassSpec{
			Formats: append([]ejv1.Format(nil), ejv1.Formats...),
			Image:   image,
		},
	}
	for _, opt := range opts {
		opt(class)
	}
	return class
}

// AsDefault makes the class the default of its formats.
func AsDefault() ClassOption {
	return func(class *ejv1.ExtractorClass) { class.Spec.Default = true }
}

// WithFormats makes the class serve only these formats.
func WithFormats(formats ...ejv1.Format) ClassOption {
	return func(class *ejv1.ExtractorClass) { class.Spec.Formats = formats }
}

// WithMaxRunning caps the class's attempts across the cluster.
func WithMaxRunning(n int32) ClassOption {
	return func(class *ejv1.ExtractorClass) { class.Spec.MaxRunning = ptr.To(n) }
}

// WithMaxRunningPerNamespace caps the class's attempts in each namespace.
func WithMaxRunningPerNamespace(n int32) ClassOption {
	return func(class *ejv1.ExtractorClass) { class.Spec.MaxRunningPerNamespace = ptr.To(n) }
}

// AttemptPod is a Pod of no job that looks like the given attempt's Pod to
// KWOK's stages and to the simulated kubelet: the job-uid and attempt
// labels, the plan's annotations, one extractor container, and the
// deadline that an attemptTimeout would give it. The operator leaves it
// alone: no job owns it.
func AttemptPod(namespace, name string, jobUID types.UID, attempt int, annotations map[string]string, activeDeadlineSeconds *int64) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: namespace, Name: name,
			Labels:      map[string]string{ejv1.JobUIDLabel: string(jobUID), ejv1.AttemptLabel: strconv.Itoa(attempt)},
			Annotations: annotations,
		},
		Spec: corev1.PodSpec{
			RestartPolicy:                corev1.RestartPolicyNever,
			AutomountServiceAccountToken: ptr.To(false),
			ActiveDeadlineSeconds:        activeDeadlineSeconds,
			SecurityContext: &corev1.PodSecurityContext{
				RunAsNonRoot:   ptr.To(true),
				RunAsUser:      ptr.To[int64](65532),
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			Containers: []corev1.Container{{
				Name: "extractor", Image: "registry.example/extractor:sim",
				SecurityContext: &corev1.SecurityContext{
					AllowPrivilegeEscalation: ptr.To(false),
					Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				},
			}},
		},
	}
}
