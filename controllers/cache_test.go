package controllers

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
)

func TestCachedPodsKeepWhatTheOperatorReadsAndNothingElse(t *testing.T) {
	job := &ejv1.ExtractionJob{ObjectMeta: metav1.ObjectMeta{Name: "drawing", Namespace: "cad", UID: "job-uid"}}
	full, err := attemptPod(job, 1, testClass("reference", "extractor:v1", ejv1.FormatPDF))
	if err != nil {
		t.Fatal(err)
	}
	full.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kubelet"}}
	full.Status = corev1.PodStatus{
		Phase:      corev1.PodFailed,
		Reason:     "Evicted",
		Conditions: []corev1.PodCondition{{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue}},
		ContainerStatuses: []corev1.ContainerStatus{{Name: "extractor", State: corev1.ContainerState{
			Terminated: &corev1.ContainerStateTerminated{ExitCode: 137, Reason: "OOMKilled", Message: "ConnectionError: refused"},
		}}},
	}
	want := full.DeepCopy()
	full.Status.PodIP, full.Status.QOSClass = "10.0.0.7", corev1.PodQOSBestEffort
	full.Status.Conditions = append(full.Status.Conditions,
		corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionFalse, Reason: "PodFailed", Message: "not ready"})
	full.Status.ContainerStatuses[0].Image, full.Status.ContainerStatuses[0].RestartCount = "extractor:v1", 1

	failure := failureOfPod(full)
	out, err := trimForCache(full)
	if err != nil {
		t.Fatal(err)
	}
	cached := out.(*corev1.Pod)
	if cached.ManagedFields != nil {
		t.Errorf("managed fields were kept: %v", cached.ManagedFields)
	}
	if !equality.Semantic.DeepEqual(cached.Spec, corev1.PodSpec{}) {
		t.Errorf("the spec was kept: %+v", cached.Spec)
	}
	if !equality.Semantic.DeepEqual(cached.Status, want.Status) {
		t.Errorf("status kept more or less than the operator reads:\n got %+v\nwant %+v", cached.Status, want.Status)
	}
	want.ManagedFields = nil
	if !equality.Semantic.DeepEqual(cached.ObjectMeta, want.ObjectMeta) {
		t.Errorf("metadata changed:\n got %+v\nwant %+v", cached.ObjectMeta, want.ObjectMeta)
	}
	if got := failureOfPod(cached); !reflect.DeepEqual(got, failure) {
		t.Errorf("the trimmed Pod classifies differently:\n got %+v\nwant %+v", got, failure)
	}
	if !metav1.IsControlledBy(cached, job) || len(cached.Finalizers) != 1 {
		t.Errorf("owner or finalizer lost: %+v", cached.ObjectMeta)
	}
}

func TestCachedJobsKeepTheirSpec(t *testing.T) {
	job := &ejv1.ExtractionJob{
		ObjectMeta: metav1.ObjectMeta{Name: "drawing", ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}},
		Spec:       ejv1.ExtractionJobSpec{Format: ejv1.FormatPDF, Cancel: true, TTLSecondsAfterFinished: ptr.To[int32](60)},
	}
	want := job.Spec.DeepCopy()
	out, err := trimForCache(job)
	if err != nil {
		t.Fatal(err)
	}
	cached := out.(*ejv1.ExtractionJob)
	if cached.ManagedFields != nil || !equality.Semantic.DeepEqual(cached.Spec, *want) {
		t.Errorf("cached job: %+v", cached)
	}
}
