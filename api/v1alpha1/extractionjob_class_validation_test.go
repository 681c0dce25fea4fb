package v1alpha1_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
)

// createJob creates a valid job in the default namespace, naming the class
// unless className is empty.
func createJob(t *testing.T, className string) *ejv1.ExtractionJob {
	t.Helper()
	job := &ejv1.ExtractionJob{
		ObjectMeta: metav1.ObjectMeta{Namespace: metav1.NamespaceDefault, Name: uniqueName("job")},
		Spec: ejv1.ExtractionJobSpec{
			Format:             ejv1.FormatPDF,
			Source:             ejv1.Source{URL: "s3://bucket/drawing.pdf"},
			ExtractorClassName: className,
		},
	}
	if err := k8sClient.Create(t.Context(), job); err != nil {
		t.Fatalf("creating a job with extractorClassName %q: %v", className, err)
	}
	return job
}

func TestAJobNamingAClassIsAcceptedBeforeTheClassExists(t *testing.T) {
	job := createJob(t, "large-pdf")
	stored := &ejv1.ExtractionJob{}
	if err := k8sClient.Get(t.Context(), client.ObjectKeyFromObject(job), stored); err != nil {
		t.Fatal(err)
	}
	if stored.Spec.ExtractorClassName != "large-pdf" {
		t.Errorf("spec.extractorClassName = %q, want large-pdf", stored.Spec.ExtractorClassName)
	}
}

func TestAJobClassNameMustBeAName(t *testing.T) {
	job := &ejv1.ExtractionJob{
		ObjectMeta: metav1.ObjectMeta{Namespace: metav1.NamespaceDefault, Name: uniqueName("job")},
		Spec: ejv1.ExtractionJobSpec{
			Format: ejv1.FormatPDF, Source: ejv1.Source{URL: "s3://bucket/drawing.pdf"},
			ExtractorClassName: "Large PDF",
		},
	}
	wantRefusedAt(t, k8sClient.Create(t.Context(), job), "spec.extractorClassName")
}

func TestAJobClassNameIsImmutable(t *testing.T) {
	tests := []struct {
		name     string
		created  string
		editedTo string
	}{
		{"changing it", "large-pdf", "reference"},
		{"removing it", "large-pdf", ""},
		{"adding it", "", "large-pdf"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			job := createJob(t, tc.created)
			job.Spec.ExtractorClassName = tc.editedTo
			wantRefusedAt(t, k8sClient.Update(t.Context(), job), "spec.extractorClassName")
		})
	}
}

func TestAJobWithAClassKeepsItsOtherEditsAllowed(t *testing.T) {
	job := createJob(t, "large-pdf")
	job.Spec.Options = map[string]string{"dpi": "300"}
	if err := k8sClient.Update(t.Context(), job); err != nil {
		t.Fatalf("editing options of a job with a class: %v", err)
	}
}

func TestAJobStatusRecordsItsClassTheQueueAndAttemptMemory(t *testing.T) {
	job := createJob(t, "")
	job.Status = ejv1.ExtractionJobStatus{
		Phase:              ejv1.PhaseQueued,
		ExtractorClassName: "reference",
		Attempt:            1,
		Attempts: []ejv1.AttemptRecord{{
			Attempt: 1, PodName: job.Name + "-1", StartTime: metav1.Now(), Outcome: ejv1.OutcomeFailed,
			ErrorType: ejv1.ErrorTypeOOMKilled, Class: ejv1.ClassRetryable, ExitCode: ptr.To[int32](137),
			Memory: ptr.To(resource.MustParse("1Gi")),
		}},
	}
	want := job.Status.DeepCopy()
	if err := k8sClient.Status().Update(t.Context(), job); err != nil {
		t.Fatalf("writing a Queued status: %v", err)
	}
	stored := &ejv1.ExtractionJob{}
	if err := k8sClient.Get(t.Context(), client.ObjectKeyFromObject(job), stored); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(*want, stored.Status, quantitiesByValue,
		cmp.Comparer(func(a, b metav1.Time) bool { return a.Unix() == b.Unix() })); diff != "" {
		t.Errorf("stored status (-want +got):\n%s", diff)
	}
	if ejv1.PhaseQueued.Finished() {
		t.Error("Queued is not a finished phase")
	}
}
