package controllers

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8stypes "k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
)

func testJob(name, uid string) *ejv1.ExtractionJob {
	return &ejv1.ExtractionJob{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: k8stypes.UID("uid-" + uid)},
		Spec: ejv1.ExtractionJobSpec{
			Format: ejv1.FormatDXF,
			Source: ejv1.Source{URL: "s3://bucket/a.dxf", SecretRef: &ejv1.SecretReference{Name: "creds"}},
		},
	}
}

func TestPodNameIsDeterministicUniqueAndShort(t *testing.T) {
	job := testJob("drawing", "1")
	if podName(job, 2) != podName(job, 2) {
		t.Error("the same job and attempt gave two names")
	}
	if podName(job, 1) == podName(job, 2) {
		t.Error("two attempts share a name")
	}
	if podName(job, 1) == podName(testJob("drawing", "2"), 1) {
		t.Error("a job recreated under the same name meets its predecessor's Pod name")
	}
	long := testJob(strings.Repeat("a", 62)+"-"+strings.Repeat("b", 100), "1")
	for _, attempt := range []int32{1, 999999} {
		name := podName(long, attempt)
		if errs := validation.IsDNS1123Label(name); len(errs) > 0 {
			t.Errorf("pod name %q is not a valid label: %v", name, errs)
		}
	}
}

func TestAttemptPodMeetsTheContract(t *testing.T) {
	job := testJob("drawing", "1")
	job.Spec.Options = map[string]string{"layers": "all"}
	job.Spec.AttemptTimeout = &metav1.Duration{Duration: 1500 * time.Millisecond}
	job.Spec.PodTemplate = &ejv1.PodTemplate{Metadata: ejv1.PodTemplateMetadata{
		Labels:      map[string]string{"team": "cad", ejv1.AttemptLabel: "spoofed"},
		Annotations: map[string]string{"cost-center": "42"},
	}}
	pod, err := attemptPod(job, 3, "registry/dxf:1")
	if err != nil {
		t.Fatal(err)
	}
	if got := pod.Labels[ejv1.AttemptLabel]; got != "3" {
		t.Errorf("attempt label = %q, want the operator's own value 3", got)
	}
	if pod.Labels[ejv1.JobUIDLabel] != string(job.UID) || pod.Labels["team"] != "cad" || pod.Annotations["cost-center"] != "42" {
		t.Errorf("labels %v / annotations %v miss the template or the operator's labels", pod.Labels, pod.Annotations)
	}
	if ref := metav1.GetControllerOf(pod); ref == nil || ref.UID != job.UID || !*ref.BlockOwnerDeletion {
		t.Errorf("controller reference = %+v, want the job", ref)
	}
	spec := pod.Spec
	if spec.RestartPolicy != corev1.RestartPolicyNever || *spec.AutomountServiceAccountToken || *spec.ActiveDeadlineSeconds != 2 {
		t.Errorf("restartPolicy %s, automount %v, activeDeadlineSeconds %d", spec.RestartPolicy, *spec.AutomountServiceAccountToken, *spec.ActiveDeadlineSeconds)
	}
	if !*spec.SecurityContext.RunAsNonRoot || spec.SecurityContext.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod security context %+v is not restricted", spec.SecurityContext)
	}
	c := spec.Containers[0]
	if c.Name != "extractor" || c.Image != "registry/dxf:1" || c.TerminationMessagePolicy != corev1.TerminationMessageFallbackToLogsOnError {
		t.Errorf("container %s image %s policy %s", c.Name, c.Image, c.TerminationMessagePolicy)
	}
	if *c.SecurityContext.AllowPrivilegeEscalation || !*c.SecurityContext.ReadOnlyRootFilesystem || c.SecurityContext.Capabilities.Drop[0] != "ALL" {
		t.Errorf("container security context %+v is not restricted", c.SecurityContext)
	}
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	want := map[string]string{
		"EXTRACTION_FORMAT": "dxf", "EXTRACTION_SOURCE_URL": "s3://bucket/a.dxf",
		"EXTRACTION_OPTIONS": `{"layers":"all"}`, "EXTRACTION_ATTEMPT": "3",
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("env %s = %q, want %q", k, env[k], v)
		}
	}
	if len(c.EnvFrom) != 1 || c.EnvFrom[0].SecretRef.Name != "creds" {
		t.Errorf("envFrom = %+v, want the secretRef", c.EnvFrom)
	}
}

func TestAttemptPodWithoutOptionsPassesAnEmptyObject(t *testing.T) {
	pod, err := attemptPod(testJob("a", "1"), 1, "img")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range pod.Spec.Containers[0].Env {
		if e.Name == "EXTRACTION_OPTIONS" && e.Value != "{}" {
			t.Errorf("EXTRACTION_OPTIONS = %q, want {}", e.Value)
		}
	}
}

func TestExtractorImagesFlag(t *testing.T) {
	var images ExtractorImages
	for _, v := range []string{"registry/all:1", "pdf=registry/pdf:2"} {
		if err := images.Set(v); err != nil {
			t.Fatalf("Set(%q): %v", v, err)
		}
	}
	if images.For(ejv1.FormatPDF) != "registry/pdf:2" || images.For(ejv1.FormatIFC) != "registry/all:1" {
		t.Errorf("images = %s", images.String())
	}
	for _, bad := range []string{"", "docx=registry/x:1", "pdf="} {
		if err := images.Set(bad); err == nil {
			t.Errorf("Set(%q) succeeded, want an error", bad)
		}
	}
}
