package controllers

import (
	"context"
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
)

// serviceUnavailable is the termination message of an extractor whose service is down.
const serviceUnavailable = "ServiceUnavailable: the extraction API answered 503"

var _ = Describe("The circuit breaker of an ExtractorClass", func() {
	var (
		ctx       context.Context
		namespace string
	)

	BeforeEach(func() {
		ctx = context.Background()
		namespace = newNamespace(ctx)
	})

	// breakerClass creates a class whose circuit opens after the failures in a
	// row, for openDuration, without ramp-up.
	breakerClass := func(failures int32, openDuration time.Duration) *ejv1.ExtractorClass {
		class := testClass("breaker-"+namespace, "registry.example/api-extractor:1", ejv1.FormatPDF)
		class.Spec.Default = false
		class.Spec.CircuitBreaker = &ejv1.CircuitBreaker{
			ConsecutiveFailures: failures,
			OpenDuration:        &metav1.Duration{Duration: openDuration},
			RampUp:              &metav1.Duration{},
		}
		return createClass(ctx, class)
	}

	createJob := func(class *ejv1.ExtractorClass, name string) *ejv1.ExtractionJob {
		job := newJob(namespace, name)
		job.Spec.ExtractorClassName = class.Name
		Expect(k8sClient.Create(ctx, job)).To(Succeed())
		return job
	}

	// failAttempt fails the job's attempt as the extractor reports it.
	failAttempt := func(job *ejv1.ExtractionJob, attempt int32, exitCode int32, message string) {
		GinkgoHelper()
		setPodFailed(ctx, waitForAttemptPod(ctx, job, attempt), exitCode, message)
	}

	circuitOf := func(g Gomega, class *ejv1.ExtractorClass) *ejv1.CircuitStatus {
		current := &ejv1.ExtractorClass{}
		g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(class), current)).To(Succeed())
		g.Expect(current.Status.Circuit).NotTo(BeNil())
		return current.Status.Circuit
	}

	waitForCircuit := func(class *ejv1.ExtractorClass, state ejv1.CircuitState, openCount int32) *ejv1.CircuitStatus {
		GinkgoHelper()
		var c *ejv1.CircuitStatus
		Eventually(func(g Gomega) {
			c = circuitOf(g, class)
			g.Expect(c.State).To(Equal(state))
			g.Expect(c.OpenCount).To(Equal(openCount))
		}).WithTimeout(30 * time.Second).Should(Succeed())
		return c
	}

	// waitParked waits until the job waits for the open circuit with its
	// attempt parked, and returns it.
	waitParked := func(job *ejv1.ExtractionJob, attempt int32) *ejv1.ExtractionJob {
		GinkgoHelper()
		var current *ejv1.ExtractionJob
		Eventually(func(g Gomega) {
			current = getJob(g, ctx, job)
			g.Expect(current.Status.Phase).To(Equal(ejv1.PhaseQueued), "status: %+v", current.Status)
			g.Expect(current.Status.Attempts).To(ContainElement(And(HaveField("Attempt", attempt), HaveField("Parked", true),
				HaveField("Outcome", ejv1.OutcomeFailed))))
		}).WithTimeout(30 * time.Second).Should(Succeed())
		return current
	}

	probePods := func(g Gomega) []corev1.Pod {
		pods := &corev1.PodList{}
		g.Expect(k8sClient.List(ctx, pods, client.InNamespace(namespace), client.MatchingLabels{ejv1.CircuitProbeLabel: "true"})).To(Succeed())
		var active []corev1.Pod
		for _, pod := range pods.Items {
			if _, ok := activeAttemptClass(&pod); ok {
				active = append(active, pod)
			}
		}
		return active
	}

	It("opens after five consecutive ServiceUnavailable failures across jobs, and parks the jobs without spending their retries", func() {
		class := breakerClass(5, time.Hour)
		var jobs []*ejv1.ExtractionJob
		for i := range 6 {
			jobs = append(jobs, createJob(class, fmt.Sprintf("job-%d", i)))
		}
		for _, job := range jobs[:4] {
			failAttempt(job, 1, 69, serviceUnavailable)
			Expect(waitForPhase(ctx, job, ejv1.PhaseRetrying).Status.RetryCount).To(Equal(int32(1)))
		}
		Expect(waitForCircuit(class, ejv1.CircuitClosed, 0)).NotTo(BeNil())

		// jobs[5]'s attempt runs while jobs[4]'s failure opens the circuit.
		setPodRunning(ctx, waitForAttemptPod(ctx, jobs[5], 1))
		failAttempt(jobs[4], 1, 69, serviceUnavailable)
		opened := waitForCircuit(class, ejv1.CircuitOpen, 1)
		Expect(opened.LastErrorType).To(Equal("ServiceUnavailable"))
		Expect(opened.ReopenAt.Sub(opened.Since.Time)).To(Equal(time.Hour))
		Expect(waitParked(jobs[4], 1).Status.RetryCount).To(BeZero(), "the job that opened the circuit spends no retry")

		failAttempt(jobs[5], 1, 69, serviceUnavailable)
		parked := waitParked(jobs[5], 1)
		Expect(parked.Status.RetryCount).To(BeZero(), "a job whose attempt ran when the circuit opened spends no retry")
		Expect(parked.Status.Message).To(Equal(circuitOpenMessage(class.Name)))
		Expect(condition(parked, ejv1.ConditionReconciling)).To(HaveField("Reason", ejv1.ReasonQueued))
		Eventually(func(g Gomega) []string { return eventNotes(g, ctx, jobs[5]) }).Should(
			ContainElement(HavePrefix(ejv1.ReasonAttemptParked + ": Attempt 1 failed with ServiceUnavailable")))

		By("a new job waiting in Queued without a Pod")
		late := createJob(class, "late")
		Eventually(func(g Gomega) {
			current := getJob(g, ctx, late)
			g.Expect(current.Status.Phase).To(Equal(ejv1.PhaseQueued))
			g.Expect(current.Status.Message).To(Equal(circuitOpenMessage(class.Name)))
		}).WithTimeout(30 * time.Second).Should(Succeed())
		Consistently(func(g Gomega) []corev1.Pod { return attemptPods(g, ctx, late) }).WithTimeout(2 * time.Second).Should(BeEmpty())

		current := &ejv1.ExtractorClass{}
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(class), current)).To(Succeed())
		Expect(meta.FindStatusCondition(current.Status.Conditions, ejv1.ConditionCircuitOpen)).To(
			And(HaveField("Status", metav1.ConditionTrue), HaveField("Reason", ejv1.ReasonCircuitOpen)))
		Eventually(func(g Gomega) []string { return classEventReasons(g, ctx, class) }).Should(ContainElement(ejv1.ReasonCircuitOpen))
	})

	It("counts again from zero after a CorruptedFile failure", func() {
		class := breakerClass(2, time.Hour)
		first, corrupt, third, fourth := createJob(class, "first"), createJob(class, "corrupt"), createJob(class, "third"), createJob(class, "fourth")
		failAttempt(first, 1, 69, serviceUnavailable)
		waitForPhase(ctx, first, ejv1.PhaseRetrying)
		failAttempt(corrupt, 1, 65, "CorruptedFile: not a PDF")
		waitForPhase(ctx, corrupt, ejv1.PhaseFailed)
		failAttempt(third, 1, 69, serviceUnavailable)
		Expect(waitForPhase(ctx, third, ejv1.PhaseRetrying).Status.RetryCount).To(Equal(int32(1)), "one failure since the reset: no opening")
		Consistently(func(g Gomega) ejv1.CircuitState { return circuitOf(g, class).State }).WithTimeout(time.Second).Should(Equal(ejv1.CircuitClosed))

		failAttempt(fourth, 1, 69, serviceUnavailable)
		waitForCircuit(class, ejv1.CircuitOpen, 1)
		waitParked(fourth, 1)
	})

	It("counts the failures in the order the attempts finished: a success from before them, seen after them, resets nothing", func() {
		class := breakerClass(3, time.Hour)
		early, first, second, third := createJob(class, "early"), createJob(class, "first"), createJob(class, "second"), createJob(class, "third")
		earlyPod := waitForAttemptPod(ctx, early, 1)
		setPodRunning(ctx, earlyPod)
		failAttempt(first, 1, 69, serviceUnavailable)
		waitForPhase(ctx, first, ejv1.PhaseRetrying)
		failAttempt(second, 1, 69, serviceUnavailable)
		waitForPhase(ctx, second, ejv1.PhaseRetrying)

		By("the early attempt's success, which finished before both failures, arriving after them")
		finishedBefore := metav1.NewTime(time.Now().Add(-time.Minute))
		updatePodStatus(ctx, earlyPod, func(status *corev1.PodStatus) {
			status.Phase = corev1.PodSucceeded
			status.ContainerStatuses = []corev1.ContainerStatus{{
				Name: extractorContainerName, Image: earlyPod.Spec.Containers[0].Image,
				State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
					Reason: "Completed", StartedAt: finishedBefore, FinishedAt: finishedBefore,
				}},
			}}
		})
		waitForPhase(ctx, early, ejv1.PhaseSucceeded)
		Consistently(func(g Gomega) ejv1.CircuitState { return circuitOf(g, class).State }).WithTimeout(time.Second).Should(Equal(ejv1.CircuitClosed))

		failAttempt(third, 1, 69, serviceUnavailable)
		waitForCircuit(class, ejv1.CircuitOpen, 1)
		Expect(waitParked(third, 1).Status.RetryCount).To(BeZero())
	})

	It("lets one probe through when half-open: a failed probe doubles the open time, a succeeding one closes the circuit", func() {
		class := breakerClass(1, 2*time.Second)
		job, other := createJob(class, "probe"), createJob(class, "other")
		setPodRunning(ctx, waitForAttemptPod(ctx, other, 1))
		failAttempt(job, 1, 69, serviceUnavailable)
		first := waitForCircuit(class, ejv1.CircuitOpen, 1)
		Expect(first.ReopenAt.Sub(first.Since.Time)).To(Equal(2 * time.Second))
		waitParked(job, 1)
		failAttempt(other, 1, 69, serviceUnavailable)
		waitParked(other, 1)

		By("the first probe failing")
		var probe corev1.Pod
		Eventually(func(g Gomega) {
			pods := probePods(g)
			g.Expect(pods).To(HaveLen(1))
			probe = pods[0]
		}).WithTimeout(30 * time.Second).Should(Succeed())
		Consistently(func(g Gomega) []corev1.Pod { return probePods(g) }).WithTimeout(time.Second).Should(HaveLen(1), "probes: 1")
		setPodFailed(ctx, &probe, 69, serviceUnavailable)
		second := waitForCircuit(class, ejv1.CircuitOpen, 2)
		Expect(second.ReopenAt.Sub(second.Since.Time)).To(Equal(4 * time.Second))
		prober := &ejv1.ExtractionJob{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: probe.OwnerReferences[0].Name}}
		Expect(waitParked(prober, 2).Status.RetryCount).To(BeZero(), "a failed probe spends no retry")

		By("the second probe succeeding")
		Eventually(func(g Gomega) {
			pods := probePods(g)
			g.Expect(pods).To(HaveLen(1))
			probe = pods[0]
		}).WithTimeout(30 * time.Second).Should(Succeed())
		setPodSucceeded(ctx, &probe, "")
		closed := waitForCircuit(class, ejv1.CircuitClosed, 0)
		Expect(closed.Since).NotTo(BeNil())
		for _, j := range []*ejv1.ExtractionJob{job, other} {
			Eventually(func(g Gomega) int32 { return getJob(g, ctx, j).Status.RetryCount }).Should(BeZero())
		}
		Eventually(func(g Gomega) []string { return classEventReasons(g, ctx, class) }).Should(
			ContainElements(ejv1.ReasonCircuitOpen, ejv1.ReasonCircuitHalfOpen, ejv1.ReasonCircuitClosed))
		current := &ejv1.ExtractorClass{}
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(class), current)).To(Succeed())
		Expect(meta.FindStatusCondition(current.Status.Conditions, ejv1.ConditionCircuitOpen)).To(BeNil())

		By("the job that did not probe starting once the circuit closed")
		for _, j := range []*ejv1.ExtractionJob{job, other} {
			if j.Name != prober.Name {
				waitForAttemptPod(ctx, j, 2)
			}
		}
	})

	It("stays open across an operator restart, with the same reopenAt", func() {
		class := breakerClass(1, time.Hour)
		job := createJob(class, "before-restart")
		failAttempt(job, 1, 69, serviceUnavailable)
		opened := waitForCircuit(class, ejv1.CircuitOpen, 1)
		waitParked(job, 1)

		stopOp()
		stopOp = startOperator()

		late := createJob(class, "after-restart")
		Eventually(func(g Gomega) ejv1.Phase { return getJob(g, ctx, late).Status.Phase }).WithTimeout(30 * time.Second).Should(Equal(ejv1.PhaseQueued))
		Consistently(func(g Gomega) {
			c := circuitOf(g, class)
			g.Expect(c.State).To(Equal(ejv1.CircuitOpen))
			g.Expect(c.ReopenAt.Time).To(BeTemporally("==", opened.ReopenAt.Time))
			g.Expect(getJob(g, ctx, job).Status.Phase).To(Equal(ejv1.PhaseQueued))
			g.Expect(attemptPods(g, ctx, late)).To(BeEmpty())
		}).WithTimeout(2 * time.Second).Should(Succeed())
	})

	It("closes by hand with a reset token, and the parked jobs start", func() {
		class := breakerClass(1, time.Hour)
		job := createJob(class, "reset")
		failAttempt(job, 1, 69, serviceUnavailable)
		waitForCircuit(class, ejv1.CircuitOpen, 1)
		waitParked(job, 1)

		editClass(ctx, class, func(c *ejv1.ExtractorClass) {
			c.Annotations = map[string]string{ejv1.CircuitResetRequestAnnotation: "2026-12-01T12:00:00Z"}
		})
		closed := waitForCircuit(class, ejv1.CircuitClosed, 0)
		Expect(closed.LastHandledResetRequest).To(Equal("2026-12-01T12:00:00Z"))
		waitForAttemptPod(ctx, job, 2)
		Expect(getJob(Default, ctx, job).Status.RetryCount).To(BeZero())
		Eventually(func(g Gomega) []string { return classEventReasons(g, ctx, class) }).Should(ContainElement(ejv1.ReasonCircuitReset))
	})
})

// classEventReasons lists the reasons of the events about the class.
func classEventReasons(g Gomega, ctx context.Context, class *ejv1.ExtractorClass) []string {
	list := &eventsv1.EventList{}
	g.Expect(k8sClient.List(ctx, list)).To(Succeed())
	var reasons []string
	for _, e := range list.Items {
		if e.Regarding.Kind == "ExtractorClass" && e.Regarding.Name == class.Name {
			reasons = append(reasons, e.Reason)
		}
	}
	return reasons
}
