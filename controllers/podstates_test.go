package controllers

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
)

// The states of a Pod that has not started (gated, unschedulable, scheduled
// and pulling) and the ways a Pod ends that are not the extractor's own
// (Kueue's eviction, the scratch volume's limit).

const (
	kueueAdmissionGate = "kueue.x-k8s.io/admission"
	insufficientMemory = "0/3 nodes are available: 3 Insufficient memory. preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod."
	// scratchEvicted is what the kubelet writes when the scratch emptyDir
	// outgrows its sizeLimit: emptyDirMessageFmt of kubernetes/kubernetes
	// pkg/kubelet/eviction/helpers.go (line 58 at commit 008b365), trailing space included.
	scratchEvicted = `Usage of EmptyDir volume "scratch" exceeds the limit "1Gi". `
)

// gatedPod is attempt n's Pod held by scheduling gates, with the condition
// the API server gives such a Pod when it is created.
func gatedPod(attempt int32, gates ...string) *corev1.Pod {
	pod := attemptPodOf(attempt)
	for _, gate := range gates {
		pod.Spec.SchedulingGates = append(pod.Spec.SchedulingGates, corev1.PodSchedulingGate{Name: gate})
	}
	pod.Status.Conditions = []corev1.PodCondition{{
		Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonSchedulingGated,
		Message: "Scheduling is blocked due to non-empty scheduling gates", LastTransitionTime: pod.CreationTimestamp,
	}}
	return pod
}

// unschedulablePod is attempt n's Pod that the scheduler has found no node for since the given time ago.
func unschedulablePod(attempt int32, message string, since time.Duration) *corev1.Pod {
	pod := attemptPodOf(attempt)
	pod.Status.Conditions = []corev1.PodCondition{{
		Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable,
		Message: message, LastTransitionTime: metav1.NewTime(transitionNow.Add(-since)),
	}}
	return pod
}

// scheduledWaitingPod is attempt n's Pod, created long ago, scheduled the
// given time ago and waiting for its image for the reason.
func scheduledWaitingPod(attempt int32, reason string, scheduled time.Duration) *corev1.Pod {
	pod := waitingPod(attempt, reason, "Back-off pulling image", time.Hour)
	pod.Status.Conditions = []corev1.PodCondition{{
		Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(transitionNow.Add(-scheduled)),
	}}
	return pod
}

// kueueEvictedPod is a running attempt's Pod that Kueue marked for
// termination and deleted, for the reason.
func kueueEvictedPod(attempt int32, reason string) *corev1.Pod {
	pod := deletingPod(attempt)
	pod.Status.Conditions = append(pod.Status.Conditions, corev1.PodCondition{
		Type: podConditionTerminationTarget, Status: corev1.ConditionTrue, Reason: reason,
		Message: "Preempted to accommodate a workload (UID: 1f2e) due to prioritization in the ClusterQueue",
	})
	return pod
}

// kubeletEvictedPod is a Pod the kubelet evicted with the message, as its
// eviction manager does: status reason Evicted and a DisruptionTarget condition.
func kubeletEvictedPod(attempt int32, message string) *corev1.Pod {
	pod := disruptedPod(attempt, "TerminationByKubelet", message)
	pod.Status.Reason, pod.Status.Message = evictedReason, message
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: extractorContainerName, State: corev1.ContainerState{
		Terminated: &corev1.ContainerStateTerminated{ExitCode: 137, Reason: "Error"},
	}}}
	return pod
}

// withSchedulingTimeout follows the Pod for a job whose class has the schedulingTimeout.
func withSchedulingTimeout(timeout time.Duration, pod *corev1.Pod) func(*reconcileScope) ctrl.Result {
	return func(s *reconcileScope) ctrl.Result {
		s.schedulingTimeout = timeout
		return s.followPod(pod)
	}
}

// stillPending is the outcome of following attempt n's Pod that has not
// started: the job stays Pending with the message, looked at again after wakeUp.
func stillPending(attempt int32, message string, wakeUp time.Duration) transitionOutcome {
	o := transitionOutcome{
		Phase: ejv1.PhasePending, RetryCount: attempt - 1, Attempt: attempt, PodName: podName(transitionJob(), attempt),
		Message:    message,
		Attempts:   append(earlierFailures(attempt), attemptSummary(attempt, ejv1.OutcomeRunning, "", "")),
		Conditions: pendingConditions,
		WakeUp:     ctrl.Result{RequeueAfter: wakeUp},
	}
	if attempt > 1 {
		o.LastFailure = "ConnectionError Retryable"
	}
	return o
}

func TestPodStatesWhileAPodWaitsToStart(t *testing.T) {
	pod1, pod2 := podName(transitionJob(), 1), podName(transitionJob(), 2)
	ungated := gatedPod(1)
	unschedulableTooLong := failedWith{attempt: 1, errorType: ejv1.ErrorTypeUnschedulable, class: ejv1.ClassRetryable,
		message: "The Pod stayed unschedulable for longer than schedulingTimeout (10m0s): " + insufficientMemory, retryCount: 1}
	noNodeSaid := unschedulableTooLong
	noNodeSaid.message = "The Pod stayed unschedulable for longer than schedulingTimeout (1m0s)."
	imagePull := failedWith{attempt: 1, errorType: ejv1.ErrorTypeImagePull, class: ejv1.ClassRetryable,
		message: "Back-off pulling image", retryCount: 1}
	runTransitionCases(t, []transitionCase{{
		name:   "a Pod held by Kueue's scheduling gate keeps the job Pending and says which gate",
		job:    onAttempt(ejv1.PhasePending, 2),
		happen: follow(gatedPod(2, kueueAdmissionGate)),
		want:   stillPending(2, "Attempt 2 is waiting: SchedulingGated: kueue.x-k8s.io/admission.", 0),
	}, {
		name:   "a Pod held by two gates names both",
		job:    onAttempt(ejv1.PhasePending, 1),
		happen: follow(gatedPod(1, kueueAdmissionGate, "example.com/budget")),
		want:   stillPending(1, "Attempt 1 is waiting: SchedulingGated: kueue.x-k8s.io/admission, example.com/budget.", 0),
	}, {
		name:   "a gated Pod is not unschedulable, however long the class's schedulingTimeout has passed",
		job:    onAttempt(ejv1.PhasePending, 1),
		happen: withSchedulingTimeout(time.Second, gatedPod(1, kueueAdmissionGate)),
		want:   stillPending(1, "Attempt 1 is waiting: SchedulingGated: kueue.x-k8s.io/admission.", 0),
	}, {
		name: "a Pod whose gates were removed waits to start, though its condition still says SchedulingGated",
		job: func() *ejv1.ExtractionJob {
			j := onAttempt(ejv1.PhasePending, 1)
			j.Status.Message = "Attempt 1 is waiting: SchedulingGated: x."
			return j
		}(),
		happen: follow(ungated),
		want:   stillPending(1, "Attempt 1 is waiting for Pod "+pod1+" to start.", 0),
	}, {
		name:   "an unschedulable Pod shows the scheduler's message",
		job:    onAttempt(ejv1.PhasePending, 2),
		happen: follow(unschedulablePod(2, insufficientMemory, time.Hour)),
		want:   stillPending(2, "Attempt 2 is waiting: "+insufficientMemory, 0),
	}, {
		name:   "the scheduler's message is made a sentence",
		job:    onAttempt(ejv1.PhasePending, 1),
		happen: follow(unschedulablePod(1, "0/3 nodes are available: insufficient memory ", time.Minute)),
		want:   stillPending(1, "Attempt 1 is waiting: 0/3 nodes are available: insufficient memory.", 0),
	}, {
		name:   "an unschedulable Pod without a message from the scheduler waits to start",
		job:    onAttempt(ejv1.PhasePending, 2),
		happen: follow(unschedulablePod(2, "", time.Minute)),
		want:   stillPending(2, "Attempt 2 is waiting for Pod "+pod2+" to start.", 0),
	}, {
		name:   "an unschedulable Pod within the class's schedulingTimeout is looked at again when it falls due",
		job:    onAttempt(ejv1.PhasePending, 1),
		happen: withSchedulingTimeout(10*time.Minute, unschedulablePod(1, insufficientMemory, 4*time.Minute)),
		want:   stillPending(1, "Attempt 1 is waiting: "+insufficientMemory, 6*time.Minute),
	}, {
		name:   "an unschedulable Pod past the class's schedulingTimeout fails its attempt as a retryable Unschedulable",
		job:    onAttempt(ejv1.PhasePending, 1),
		happen: withSchedulingTimeout(10*time.Minute, unschedulablePod(1, insufficientMemory, 10*time.Minute)),
		want:   unschedulableTooLong.retried("Retry 1/3", firstRetryWait),
	}, {
		name: "the schedulingTimeout of a Pod whose condition has no time counts from the Pod's creation",
		job:  onAttempt(ejv1.PhasePending, 1),
		happen: withSchedulingTimeout(time.Minute, func() *corev1.Pod {
			pod := unschedulablePod(1, "", 0) // created attemptAge ago
			pod.Status.Conditions[0].LastTransitionTime = metav1.Time{}
			return pod
		}()),
		want: noNodeSaid.retried("Retry 1/3", firstRetryWait),
	}, {
		name:   "without a schedulingTimeout an unschedulable Pod waits for ever",
		job:    onAttempt(ejv1.PhasePending, 1),
		happen: follow(unschedulablePod(1, insufficientMemory, 1000*time.Hour)),
		want:   stillPending(1, "Attempt 1 is waiting: "+insufficientMemory, 0),
	}, {
		name:   "the image-pull grace period counts from the Pod's scheduling, not its creation",
		job:    onAttempt(ejv1.PhasePending, 1),
		happen: follow(scheduledWaitingPod(1, "ImagePullBackOff", 2*time.Minute)),
		want:   stillPending(1, "Attempt 1 is waiting for Pod "+pod1+" to start.", 3*time.Minute),
	}, {
		name:   "an image that cannot be pulled for the grace period after scheduling fails its attempt",
		job:    onAttempt(ejv1.PhasePending, 1),
		happen: follow(scheduledWaitingPod(1, "ErrImagePull", 5*time.Minute)),
		want:   imagePull.retried("Retry 1/3", firstRetryWait),
	}})
}

func TestPodStatesWaitingMessageChangesOnlyWithTheScheduler(t *testing.T) {
	messageAt := func(offset time.Duration, pod *corev1.Pod) string {
		s := newTransitionScope(onAttempt(ejv1.PhasePending, 1))
		s.now = transitionNow.Add(offset)
		s.followPod(pod)
		return s.job.Status.Message
	}
	now, later := messageAt(0, unschedulablePod(1, insufficientMemory, time.Minute)), messageAt(time.Hour, unschedulablePod(1, insufficientMemory, time.Minute))
	if diff := cmp.Diff(now, later); diff != "" {
		t.Errorf("the message changed with the time alone (-now +an hour later):\n%s", diff)
	}
	if changed := messageAt(0, unschedulablePod(1, "0/4 nodes are available: 4 node(s) had untolerated taint.", time.Minute)); changed == now {
		t.Errorf("the message did not follow the scheduler's: %q", changed)
	}
}

func TestPodStatesOfPodsTakenAway(t *testing.T) {
	kueueEvicted := failedWith{attempt: 1, errorType: ejv1.ErrorTypePodDisrupted, class: ejv1.ClassDisruption,
		message: "The cluster disrupted the attempt's Pod.", disruptionCount: 1}
	scratchExceeded := failedWith{attempt: 1, errorType: ejv1.ErrorTypeScratchSpaceExceeded, class: ejv1.ClassRetryable,
		message: `Usage of EmptyDir volume "scratch" exceeds the limit "1Gi".`, retryCount: 1}
	runTransitionCases(t, []transitionCase{{
		name:   "a Pod Kueue evicts with TerminationTarget is a disruption that spends no retry",
		job:    runningJob(1),
		happen: follow(kueueEvictedPod(1, "Preempted")),
		want:   kueueEvicted.retried("Disruption 1/5", firstRetryWait),
	}, {
		name:   "a Pod Kueue evicts for any other reason is a disruption too",
		job:    runningJob(1),
		happen: follow(kueueEvictedPod(1, "PodsReadyTimeout")),
		want:   kueueEvicted.retried("Disruption 1/5", firstRetryWait),
	}, {
		name:   "an attempt evicted for outgrowing its scratch volume fails as a retryable ScratchSpaceExceeded, spending a retry",
		job:    runningJob(1),
		happen: follow(kubeletEvictedPod(1, scratchEvicted)),
		want:   scratchExceeded.retried("Retry 1/3", firstRetryWait),
	}})
}

func TestClassifyPodStates(t *testing.T) {
	cases := []struct {
		name string
		pod  *corev1.Pod
		want ejv1.Failure
	}{{
		name: "the kubelet's eviction for the scratch emptyDir's sizeLimit is ScratchSpaceExceeded",
		pod:  kubeletEvictedPod(1, scratchEvicted),
		want: ejv1.Failure{ErrorType: ejv1.ErrorTypeScratchSpaceExceeded, Class: ejv1.ClassRetryable, ExitCode: ptrInt32(137),
			Reason: "Evicted", Message: `Usage of EmptyDir volume "scratch" exceeds the limit "1Gi".`},
	}, {
		name: "the scratch eviction is recognised whatever the limit and the extractor's termination message",
		pod: func() *corev1.Pod {
			pod := kubeletEvictedPod(1, `Usage of EmptyDir volume "scratch" exceeds the limit "512Mi". `)
			pod.Status.ContainerStatuses[0].State.Terminated.Message = "OSError: No space left on device"
			return pod
		}(),
		want: ejv1.Failure{ErrorType: ejv1.ErrorTypeScratchSpaceExceeded, Class: ejv1.ClassRetryable, ExitCode: ptrInt32(137),
			Reason: "Evicted", Message: `Usage of EmptyDir volume "scratch" exceeds the limit "512Mi".`},
	}, {
		name: "an eviction for another emptyDir is a disruption",
		pod:  kubeletEvictedPod(1, `Usage of EmptyDir volume "cache" exceeds the limit "1Gi". `),
		want: ejv1.Failure{ErrorType: ejv1.ErrorTypePodEvicted, Class: ejv1.ClassDisruption, ExitCode: ptrInt32(137),
			Reason: "Evicted", Message: `Usage of EmptyDir volume "cache" exceeds the limit "1Gi".`},
	}, {
		name: "an eviction for the node's disk pressure is a disruption",
		pod:  kubeletEvictedPod(1, "The node was low on resource: ephemeral-storage. Threshold quantity: 1Gi, available: 512Mi. "),
		want: ejv1.Failure{ErrorType: ejv1.ErrorTypePodEvicted, Class: ejv1.ClassDisruption, ExitCode: ptrInt32(137),
			Reason: "Evicted", Message: "The node was low on resource: ephemeral-storage. Threshold quantity: 1Gi, available: 512Mi."},
	}, {
		name: "the scratch volume's message without the kubelet's Evicted reason is no eviction",
		pod: func() *corev1.Pod {
			pod := terminatedPod(1, corev1.PodFailed, 1, "")
			pod.Status.Message = scratchEvicted
			return pod
		}(),
		want: ejv1.Failure{ErrorType: ejv1.ErrorTypeUnknown, Class: ejv1.ClassRetryable, ExitCode: ptrInt32(1),
			Reason: "Error", Message: `Usage of EmptyDir volume "scratch" exceeds the limit "1Gi".`},
	}, {
		name: "TerminationTarget is a PodDisrupted disruption, ahead of the deletion that follows it",
		pod:  kueueEvictedPod(1, "InactiveWorkload"),
		want: ejv1.Failure{ErrorType: ejv1.ErrorTypePodDisrupted, Class: ejv1.ClassDisruption, Reason: podConditionTerminationTarget,
			Message: "The cluster disrupted the attempt's Pod."},
	}, {
		name: "a TerminationTarget that is not true is nothing",
		pod: func() *corev1.Pod {
			pod := terminatedPod(1, corev1.PodFailed, 1, "ConnectionError: refused")
			pod.Status.Conditions = []corev1.PodCondition{{Type: podConditionTerminationTarget, Status: corev1.ConditionFalse}}
			return pod
		}(),
		want: ejv1.Failure{ErrorType: "ConnectionError", Class: ejv1.ClassRetryable, ExitCode: ptrInt32(1), Reason: "Error", Message: "refused"},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			failure := failureOfPod(tc.pod)
			failure.deleted = !tc.pod.DeletionTimestamp.IsZero()
			got, _ := classify(failure, nil)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("classify (-want +got):\n%s", diff)
			}
		})
	}
}

func TestClassifyUnschedulable(t *testing.T) {
	got, _ := classify(unschedulableFailure(insufficientMemory, 5*time.Minute), nil)
	want := ejv1.Failure{ErrorType: ejv1.ErrorTypeUnschedulable, Class: ejv1.ClassRetryable, Reason: corev1.PodReasonUnschedulable,
		Message: fmt.Sprintf("The Pod stayed unschedulable for longer than schedulingTimeout (5m0s): %s", insufficientMemory)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("classify (-want +got):\n%s", diff)
	}
	ruled, _ := classify(unschedulableFailure("", time.Minute), []ejv1.RetryRule{{Reasons: []string{"Unschedulable"}, Action: ejv1.RuleActionFail}})
	if ruled.Class != ejv1.ClassPermanent {
		t.Errorf("a reason rule on Unschedulable left the class %s, want Permanent", ruled.Class)
	}
}

func ptrInt32(v int32) *int32 { return &v }
