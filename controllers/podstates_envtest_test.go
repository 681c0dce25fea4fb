package controllers

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
)

// The specs play the scheduler and Kueue: envtest runs neither, so they
// patch the Pods' status and spec as those would.

var _ = Describe("An attempt's Pod that waits to start, run by the operator", func() {
	var (
		ctx       context.Context
		namespace string
	)
	BeforeEach(func() {
		ctx = context.Background()
		namespace = newNamespace(ctx)
	})

	It("keeps the job Pending while a scheduling gate holds the Pod, and goes on once the gate is removed", func() {
		gateAttemptPodsIn(ctx, namespace, kueueAdmissionGate)
		job := newJob(namespace, "gated")
		Expect(k8sClient.Create(ctx, job)).To(Succeed())

		pod := waitForAttemptPod(ctx, job, 1)
		Expect(pod.Spec.SchedulingGates).To(ConsistOf(corev1.PodSchedulingGate{Name: kueueAdmissionGate}))
		waitForPendingMessage(ctx, job, "Attempt 1 is waiting: SchedulingGated: kueue.x-k8s.io/admission.")

		By("removing the gate, as Kueue does when it admits the workload")
		Eventually(func(g Gomega) {
			current := &corev1.Pod{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(pod), current)).To(Succeed())
			current.Spec.SchedulingGates = nil
			g.Expect(k8sClient.Update(ctx, current)).To(Succeed())
		}).Should(Succeed())
		waitForPendingMessage(ctx, job, "Attempt 1 is waiting for Pod "+pod.Name+" to start.")
		scheduleAndRun(ctx, job, pod)
	})

	It("shows the scheduler's message while the Pod is unschedulable, as the message changes", func() {
		job := newJob(namespace, "unschedulable")
		Expect(k8sClient.Create(ctx, job)).To(Succeed())
		pod := waitForAttemptPod(ctx, job, 1)

		for _, message := range []string{
			"0/3 nodes are available: 3 Insufficient memory.",
			"0/4 nodes are available: 1 Insufficient memory, 3 node(s) had untolerated taint {gpu: true}.",
		} {
			setPodUnschedulable(ctx, pod, message, time.Now())
			waitForPendingMessage(ctx, job, "Attempt 1 is waiting: "+message)
		}
		scheduleAndRun(ctx, job, pod)
	})

	It("retries a Pod that Kueue evicts with TerminationTarget as a disruption, without spending a retry", func() {
		job := newJob(namespace, "kueue-evicted")
		Expect(k8sClient.Create(ctx, job)).To(Succeed())
		pod := waitForAttemptPod(ctx, job, 1)
		setPodRunning(ctx, pod)
		waitForPhase(ctx, job, ejv1.PhaseRunning)

		By("marking the Pod and deleting it, as Kueue evicts a workload")
		updatePodStatus(ctx, pod, func(status *corev1.PodStatus) {
			status.Conditions = append(status.Conditions, corev1.PodCondition{
				Type: podConditionTerminationTarget, Status: corev1.ConditionTrue, Reason: "Preempted",
				Message:            "Preempted to accommodate a workload due to prioritization in the ClusterQueue",
				LastTransitionTime: metav1.Now(),
			})
		})
		Expect(k8sClient.Delete(ctx, pod)).To(Succeed())

		Eventually(func(g Gomega) {
			current := getJob(g, ctx, job)
			g.Expect(current.Status.Attempt).To(BeNumerically(">=", 1))
			g.Expect(current.Status.LastFailure).NotTo(BeNil())
			g.Expect(current.Status.LastFailure.ErrorType).To(Equal(ejv1.ErrorTypePodDisrupted))
			g.Expect(current.Status.LastFailure.Class).To(Equal(ejv1.ClassDisruption))
			g.Expect(current.Status.DisruptionCount).To(Equal(int32(1)))
			g.Expect(current.Status.RetryCount).To(BeZero())
		}).WithTimeout(30 * time.Second).Should(Succeed())
		waitForAttemptPod(ctx, job, 2)
	})
})

// These specs call Reconcile directly with a fake clock, so the waits for a
// Pod to start can be checked to the second.
var _ = Describe("Reconcile of an attempt's Pod that waits to start, with a fake clock", func() {
	var (
		ctx        context.Context
		fakeClock  *clocktesting.FakeClock
		reconciler *ExtractionJobReconciler
		job        *ejv1.ExtractionJob
	)
	reconcile := func() ctrl.Result {
		GinkgoHelper()
		result, err := reconciler.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(job)})
		Expect(err).NotTo(HaveOccurred())
		return result
	}
	attemptPod := func(attempt int32) *corev1.Pod {
		GinkgoHelper()
		pod := &corev1.Pod{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: job.Namespace, Name: podName(getJob(Default, ctx, job), attempt)}, pod)).To(Succeed())
		return pod
	}
	expectStopped := func(pod *corev1.Pod) {
		GinkgoHelper()
		current := &corev1.Pod{}
		err := k8sClient.Get(ctx, client.ObjectKeyFromObject(pod), current)
		if !apierrors.IsNotFound(err) {
			Expect(err).NotTo(HaveOccurred())
			Expect(current.DeletionTimestamp).NotTo(BeNil(), "the stuck Pod was not deleted")
		}
	}

	BeforeEach(func() {
		ctx = context.Background()
		// The Pods' times are the API server's, so the fake clock starts at the real time.
		fakeClock = clocktesting.NewFakeClock(time.Now())
		reconciler = NewExtractionJobReconciler(k8sClient, k8sClient, events.NewFakeRecorder(100), Options{
			Clock:                fakeClock,
			Jitter:               func() float64 { return 0.5 },
			ImagePullGracePeriod: time.Minute,
		})
		job = newJob(newNamespace(ctx), "waits")
		job.Labels = map[string]string{directReconcileLabel: "true"}
	})

	It("counts the image-pull grace period from the Pod's scheduling, not its creation", func() {
		Expect(k8sClient.Create(ctx, job)).To(Succeed())
		reconcile()
		pod := attemptPod(1)

		By("scheduling the Pod ten minutes after its creation, as after a long wait behind a gate")
		scheduled := pod.CreationTimestamp.Add(10 * time.Minute)
		setPodScheduled(ctx, pod, scheduled)
		updatePodStatus(ctx, pod, func(status *corev1.PodStatus) {
			status.ContainerStatuses = []corev1.ContainerStatus{{Name: extractorContainerName, Image: pod.Spec.Containers[0].Image,
				State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: "Back-off pulling image"}}}}
		})
		fakeClock.SetTime(scheduled.Add(30 * time.Second))
		Expect(reconcile().RequeueAfter).To(Equal(30 * time.Second))
		pending := getJob(Default, ctx, job)
		Expect(pending.Status.Phase).To(Equal(ejv1.PhasePending))
		Expect(attemptPod(1).DeletionTimestamp).To(BeNil())

		fakeClock.Step(30 * time.Second)
		reconcile()
		failed := getJob(Default, ctx, job)
		Expect(failed.Status.Phase).To(Equal(ejv1.PhaseRetrying))
		Expect(failed.Status.LastFailure.ErrorType).To(Equal(ejv1.ErrorTypeImagePull))
		Expect(failed.Status.RetryCount).To(Equal(int32(1)))
		expectStopped(pod)
	})

	It("fails an attempt unschedulable for the class's schedulingTimeout as a retryable Unschedulable, and retries it", func() {
		class := &ejv1.ExtractorClass{
			ObjectMeta: metav1.ObjectMeta{Name: "unschedulable-" + job.Namespace},
			Spec: ejv1.ExtractorClassSpec{
				Formats: []ejv1.Format{job.Spec.Format}, Image: pdfTestImage,
				SchedulingTimeout: &metav1.Duration{Duration: 10 * time.Minute},
			},
		}
		Expect(k8sClient.Create(ctx, class)).To(Succeed())
		DeferCleanup(func() { Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, class))).To(Succeed()) })
		job.Spec.ExtractorClassName = class.Name
		Expect(k8sClient.Create(ctx, job)).To(Succeed())
		reconcile()
		reconcile() // the Pod's first event: it records the attempt
		Expect(getJob(Default, ctx, job).Status.ExtractorClassName).To(Equal(class.Name))
		pod := attemptPod(1)

		unschedulableSince := pod.CreationTimestamp.Add(time.Minute)
		setPodUnschedulable(ctx, pod, "0/3 nodes are available: 3 Insufficient memory.", unschedulableSince)
		fakeClock.SetTime(unschedulableSince.Add(4 * time.Minute))
		Expect(reconcile().RequeueAfter).To(Equal(6 * time.Minute))
		Expect(getJob(Default, ctx, job).Status.Message).To(Equal("Attempt 1 is waiting: 0/3 nodes are available: 3 Insufficient memory."))

		fakeClock.Step(6 * time.Minute)
		wait := reconcile().RequeueAfter
		failed := getJob(Default, ctx, job)
		Expect(failed.Status.Phase).To(Equal(ejv1.PhaseRetrying))
		Expect(failed.Status.LastFailure).To(Equal(&ejv1.Failure{
			ErrorType: ejv1.ErrorTypeUnschedulable, Class: ejv1.ClassRetryable, Reason: corev1.PodReasonUnschedulable,
			Message: "The Pod stayed unschedulable for longer than schedulingTimeout (10m0s): 0/3 nodes are available: 3 Insufficient memory.",
		}))
		Expect(failed.Status.RetryCount).To(Equal(int32(1)))
		expectStopped(pod)

		fakeClock.Step(wait)
		reconcile()
		attemptPod(2)
	})
})

// gateAttemptPodsIn makes the API server add the scheduling gate to every
// attempt Pod created in the namespace, with a MutatingAdmissionPolicy (GA,
// admissionregistration.k8s.io/v1, served by default), as Kueue's webhook
// gates the Pods of its plain-Pod integration. It returns once the policy
// is in force.
func gateAttemptPodsIn(ctx context.Context, namespace, gate string) {
	GinkgoHelper()
	name := "gate-attempt-pods-" + namespace
	policy := &admissionregistrationv1.MutatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: admissionregistrationv1.MutatingAdmissionPolicySpec{
			MatchConstraints: &admissionregistrationv1.MatchResources{
				ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
					RuleWithOperations: admissionregistrationv1.RuleWithOperations{
						Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
						Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
					},
				}},
			},
			MatchConditions: []admissionregistrationv1.MatchCondition{{
				Name:       "attempt-pods",
				Expression: `has(object.metadata.labels) && "` + ejv1.JobUIDLabel + `" in object.metadata.labels`,
			}},
			Mutations: []admissionregistrationv1.Mutation{{
				PatchType: admissionregistrationv1.PatchTypeApplyConfiguration,
				ApplyConfiguration: &admissionregistrationv1.ApplyConfiguration{
					Expression: `Object{spec: Object.spec{schedulingGates: [Object.spec.schedulingGates{name: "` + gate + `"}]}}`,
				},
			}},
			FailurePolicy:      ptr.To(admissionregistrationv1.Fail),
			ReinvocationPolicy: admissionregistrationv1.NeverReinvocationPolicy,
		},
	}
	binding := &admissionregistrationv1.MutatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: admissionregistrationv1.MutatingAdmissionPolicyBindingSpec{
			PolicyName: name,
			MatchResources: &admissionregistrationv1.MatchResources{NamespaceSelector: &metav1.LabelSelector{
				MatchLabels: map[string]string{corev1.LabelMetadataName: namespace},
			}},
		},
	}
	Expect(k8sClient.Create(ctx, policy)).To(Succeed())
	DeferCleanup(func() { Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, policy))).To(Succeed()) })
	Expect(k8sClient.Create(ctx, binding)).To(Succeed())
	DeferCleanup(func() { Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, binding))).To(Succeed()) })

	By("waiting until the API server applies the policy, which it loads asynchronously")
	probe := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "policy-probe", Labels: map[string]string{ejv1.JobUIDLabel: "probe"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "probe", Image: defaultTestImage}}},
	}
	Eventually(func(g Gomega) {
		dryRun := probe.DeepCopy()
		g.Expect(k8sClient.Create(ctx, dryRun, client.DryRunAll)).To(Succeed())
		g.Expect(dryRun.Spec.SchedulingGates).To(ConsistOf(corev1.PodSchedulingGate{Name: gate}))
	}).WithTimeout(30 * time.Second).Should(Succeed())
}

// waitForPendingMessage waits until the job is Pending with the message.
func waitForPendingMessage(ctx context.Context, job *ejv1.ExtractionJob, message string) {
	GinkgoHelper()
	Eventually(func(g Gomega) {
		current := getJob(g, ctx, job)
		g.Expect(current.Status.Phase).To(Equal(ejv1.PhasePending))
		g.Expect(current.Status.Message).To(Equal(message))
	}).WithTimeout(30 * time.Second).Should(Succeed())
}

// scheduleAndRun plays the scheduler and the kubelet starting the Pod, and waits until the job runs.
func scheduleAndRun(ctx context.Context, job *ejv1.ExtractionJob, pod *corev1.Pod) {
	GinkgoHelper()
	setPodScheduled(ctx, pod, time.Now())
	setPodRunning(ctx, pod)
	waitForPhase(ctx, job, ejv1.PhaseRunning)
}

// setPodScheduled plays the scheduler binding the Pod, at the given time.
func setPodScheduled(ctx context.Context, pod *corev1.Pod, at time.Time) {
	GinkgoHelper()
	setPodScheduledCondition(ctx, pod, corev1.PodCondition{
		Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(at)})
}

// setPodUnschedulable plays the scheduler finding no node for the Pod since the given time.
func setPodUnschedulable(ctx context.Context, pod *corev1.Pod, message string, since time.Time) {
	GinkgoHelper()
	setPodScheduledCondition(ctx, pod, corev1.PodCondition{
		Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable,
		Message: message, LastTransitionTime: metav1.NewTime(since)})
}

func setPodScheduledCondition(ctx context.Context, pod *corev1.Pod, scheduled corev1.PodCondition) {
	GinkgoHelper()
	updatePodStatus(ctx, pod, func(status *corev1.PodStatus) {
		conditions := []corev1.PodCondition{scheduled}
		for _, c := range status.Conditions {
			if c.Type != corev1.PodScheduled {
				conditions = append(conditions, c)
			}
		}
		status.Conditions = conditions
	})
}
