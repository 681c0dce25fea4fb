package controllers

import (
	"reflect"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
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
		Phase:  corev1.PodFailed,
		Reason: "Evicted",
		Conditions: []corev1.PodCondition{
			{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue},
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, Reason: "Scheduled", Message: "bound",
				LastTransitionTime: metav1.NewTime(time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC))},
		},
		ContainerStatuses: []corev1.ContainerStatus{{Name: "extractor", State: corev1.ContainerState{
			Terminated: &corev1.ContainerStateTerminated{ExitCode: 137, Reason: "OOMKilled", Message: "ConnectionError: refused"},
		}}},
	}
	full.Spec.SchedulingGates = []corev1.PodSchedulingGate{{Name: "kueue.x-k8s.io/admission"}}
	want := full.DeepCopy()
	full.Status.Conditions[1].LastProbeTime = metav1.Now()
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
	if !equality.Semantic.DeepEqual(cached.Spec, corev1.PodSpec{SchedulingGates: want.Spec.SchedulingGates}) {
		t.Errorf("the spec was kept beyond the scheduling gates: %+v", cached.Spec)
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

// The operator adopts the Pod it created from the cache, and records the
// memory the attempt runs with: the cache keeps the extractor's memory limit.
func TestCachedPodsKeepTheMemoryTheirAttemptRunsWith(t *testing.T) {
	job := &ejv1.ExtractionJob{ObjectMeta: metav1.ObjectMeta{Name: "drawing", Namespace: "cad", UID: "job-uid"}}
	class := testClass("large", "extractor:v1", ejv1.FormatPDF)
	class.Spec.Resources = &ejv1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("768Mi")}}
	full, err := attemptPod(job, 1, class)
	if err != nil {
		t.Fatal(err)
	}
	out, err := trimForCache(full)
	if err != nil {
		t.Fatal(err)
	}
	if got := podMemory(out.(*corev1.Pod)); got == nil || got.Cmp(resource.MustParse("768Mi")) != 0 {
		t.Errorf("the cached Pod's memory is %v, want 768Mi", got)
	}
}

// A Pod that waits to start is read for its gates, and for the PodScheduled
// condition's reason, message and time: the trimmed copy must give the same
// job message and the same verdict, at the same time, as the full Pod.
func TestCachedPodsWaitToStartLikeTheFullOnes(t *testing.T) {
	job := &ejv1.ExtractionJob{ObjectMeta: metav1.ObjectMeta{Name: "drawing", Namespace: "cad", UID: "job-uid"}}
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	pod := func(gates []corev1.PodSchedulingGate, condition corev1.PodCondition, waiting string) *corev1.Pod {
		pod, err := attemptPod(job, 1, testClass("reference", "extractor:v1", ejv1.FormatPDF))
		if err != nil {
			t.Fatal(err)
		}
		pod.CreationTimestamp = metav1.NewTime(now.Add(-time.Hour))
		pod.Spec.SchedulingGates = gates
		pod.Status = corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{condition}}
		if waiting != "" {
			pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: extractorContainerName, State: corev1.ContainerState{
				Waiting: &corev1.ContainerStateWaiting{Reason: waiting, Message: "Back-off pulling image"}}}}
		}
		return pod
	}
	since := func(ago time.Duration) metav1.Time { return metav1.NewTime(now.Add(-ago)) }
	for _, tc := range []struct {
		name string
		pod  *corev1.Pod
	}{
		{"a gated Pod", pod([]corev1.PodSchedulingGate{{Name: "kueue.x-k8s.io/admission"}},
			corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonSchedulingGated, LastTransitionTime: since(time.Hour)}, "")},
		{"an unschedulable Pod within its timeout", pod(nil,
			corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable,
				Message: "0/3 nodes are available: insufficient memory.", LastTransitionTime: since(time.Minute)}, "")},
		{"an unschedulable Pod past its timeout", pod(nil,
			corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable,
				Message: "0/3 nodes are available: insufficient memory.", LastTransitionTime: since(20 * time.Minute)}, "")},
		{"a Pod pulling its image since it was scheduled", pod(nil,
			corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: since(time.Minute)}, "ImagePullBackOff")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := trimForCache(tc.pod.DeepCopy())
			if err != nil {
				t.Fatal(err)
			}
			cached := out.(*corev1.Pod)
			s := &reconcileScope{now: now, imagePullGracePeriod: 5 * time.Minute, schedulingTimeout: 10 * time.Minute}
			type verdict struct {
				Message string
				Failure attemptFailure
				Stuck   bool
				Wait    time.Duration
			}
			read := func(pod *corev1.Pod) verdict {
				failure, stuck, wait := s.startFailure(pod)
				return verdict{waitingMessage(1, pod), failure, stuck, wait}
			}
			if diff := cmp.Diff(read(tc.pod), read(cached), cmp.AllowUnexported(attemptFailure{})); diff != "" {
				t.Errorf("the trimmed Pod waits differently (-full +trimmed):\n%s", diff)
			}
		})
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
