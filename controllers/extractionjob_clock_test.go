package controllers

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
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

// These specs call Reconcile directly with a fake clock, so the default
// backoff of 30 s × 4ⁿ can be checked to the second without waiting for it.
var _ = Describe("Reconcile with the default backoff and a fake clock", func() {
	var (
		ctx        context.Context
		fakeClock  *clocktesting.FakeClock
		recorder   *events.FakeRecorder
		reconciler *ExtractionJobReconciler
		job        *ejv1.ExtractionJob
	)
	start := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

	reconcile := func() ctrl.Result {
		GinkgoHelper()
		result, err := reconciler.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(job)})
		Expect(err).NotTo(HaveOccurred())
		return result
	}
	attemptExists := func(attempt int32) bool {
		GinkgoHelper()
		err := k8sClient.Get(ctx, client.ObjectKey{Namespace: job.Namespace, Name: podName(getJob(Default, ctx, job), attempt)}, &corev1.Pod{})
		if apierrors.IsNotFound(err) {
			return false
		}
		Expect(err).NotTo(HaveOccurred())
		return true
	}
	// podEvent is the reconcile that the first event of a Pod the last one
	// created triggers: it records the attempt, which the creating
	// reconcile leaves to it.
	podEvent := func() {
		GinkgoHelper()
		Expect(reconcile()).To(Equal(ctrl.Result{}))
		Expect(getJob(Default, ctx, job).Status.PodName).NotTo(BeEmpty(), "the attempt is not recorded")
	}
	failAttempt := func(attempt int32) {
		GinkgoHelper()
		pod := &corev1.Pod{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: job.Namespace, Name: podName(getJob(Default, ctx, job), attempt)}, pod)).To(Succeed())
		setPodFailed(ctx, pod, 1, "Werk24Timeout: the drawing service did not answer")
	}

	rollBackStatus := func() {
		GinkgoHelper()
		By("rolling the status back as if the operator crashed before writing it")
		lost := getJob(Default, ctx, job)
		lost.Status = ejv1.ExtractionJobStatus{}
		Expect(k8sClient.Status().Update(ctx, lost)).To(Succeed())
	}

	BeforeEach(func() {
		ctx = context.Background()
		fakeClock = clocktesting.NewFakeClock(start)
		recorder = events.NewFakeRecorder(100)
		reconciler = NewExtractionJobReconciler(k8sClient, k8sClient, recorder, Options{
			Clock:                fakeClock,
			Jitter:               func() float64 { return 0.5 },
			ImagePullGracePeriod: time.Minute,
		})
		job = &ejv1.ExtractionJob{
			ObjectMeta: metav1.ObjectMeta{
				Namespace: newNamespace(ctx), Name: "werk24-drawing",
				Labels: map[string]string{directReconcileLabel: "true"},
			},
			Spec: ejv1.ExtractionJobSpec{Format: ejv1.FormatWerk24, Source: ejv1.Source{URL: "https://files.example/d.png"}},
		}
		Expect(k8sClient.Create(ctx, job)).To(Succeed())
	})

	It("waits 30 s, 120 s and 480 s plus jitter before the retries, then fails", func() {
		Expect(reconcile()).To(Equal(ctrl.Result{}))
		Expect(attemptExists(1)).To(BeTrue())
		podEvent()
		Expect(getJob(Default, ctx, job).Status.StartTime.Time).To(BeTemporally("==", start))

		// With jitter 0.5 of 25 %, each wait is 1.125 × base × 4ⁿ⁻¹, to the microsecond.
		waits := []time.Duration{33750 * time.Millisecond, 135 * time.Second, 540 * time.Second}
		for i, wait := range waits {
			retry := int32(i + 1)
			failAttempt(retry)
			Expect(reconcile().RequeueAfter).To(Equal(wait))
			retrying := getJob(Default, ctx, job)
			Expect(retrying.Status.Phase).To(Equal(ejv1.PhaseRetrying))
			Expect(retrying.Status.RetryCount).To(Equal(retry))
			Expect(retrying.Status.NextRetryAt.Time).To(BeTemporally("==", fakeClock.Now().Add(wait)))

			By("not starting the retry a second early")
			fakeClock.Step(wait - time.Second)
			Expect(reconcile().RequeueAfter).To(Equal(time.Second))
			Expect(attemptExists(retry + 1)).To(BeFalse())

			fakeClock.Step(time.Second)
			Expect(reconcile()).To(Equal(ctrl.Result{}))
			Expect(attemptExists(retry + 1)).To(BeTrue())
			podEvent()
			Expect(getJob(Default, ctx, job).Status.NextRetryAt).To(BeNil())
		}

		failAttempt(4)
		Expect(reconcile()).To(Equal(ctrl.Result{}))
		failed := getJob(Default, ctx, job)
		Expect(failed.Status.Phase).To(Equal(ejv1.PhaseFailed))
		Expect(failed.Status.Message).To(Equal("Max retries (3) exceeded. Last error: Werk24Timeout: the drawing service did not answer"))
		Expect(failed.Status.Attempts).To(HaveLen(4))
		// completionTime has whole seconds, truncated.
		Expect(failed.Status.CompletionTime.Time).To(BeTemporally("==", fakeClock.Now().Truncate(time.Second)))
	})

	It("announces each scheduled retry with its time", func() {
		reconcile()
		failAttempt(1)
		reconcile()
		Expect(drain(recorder)).To(ContainElement(
			"Normal RetryScheduled Retry 1/3: Werk24Timeout: the drawing service did not answer. Next attempt at 2026-11-28T12:00:33.75Z (in 33.75s)."))
	})

	It("wakes a job whose retry falls due ahead of the event-driven work in the queue", func() {
		reconcile()
		failAttempt(1)
		scheduled := reconcile()
		Expect(scheduled.Priority).To(HaveValue(BeNumerically(">", 0)))

		By("keeping that priority when an event wakes the job before its time")
		fakeClock.Step(time.Second)
		Expect(reconcile().Priority).To(Equal(scheduled.Priority))
	})

	It("keeps the wake-up of a job whose cached version is older than its own last write", func() {
		reconcile()
		failAttempt(1)
		scheduled := reconcile()
		By("seeing the version before that write, as a lagging cache would")
		stale := getJob(Default, ctx, job)
		reconciler.expectations.expectJobWrite(stale, stale.ResourceVersion)
		again := reconcile()
		Expect(again.RequeueAfter).To(BeNumerically(">", 0))
		Expect(again.RequeueAfter).To(BeNumerically("<", scheduled.RequeueAfter))
	})

	It("makes no write when nothing changed", func() {
		reconcile()
		podEvent()
		before := getJob(Default, ctx, job).ResourceVersion
		reconcile()
		reconcile()
		Expect(getJob(Default, ctx, job).ResourceVersion).To(Equal(before))
	})

	It("adopts the Pod of an attempt whose status write was lost", func() {
		reconcile()
		rollBackStatus()

		reconcile()
		current := getJob(Default, ctx, job)
		Expect(current.Status.Attempt).To(BeEquivalentTo(1))
		Expect(current.Status.PodName).To(Equal(podName(current, 1)))
		Expect(attemptPods(Default, ctx, job)).To(HaveLen(1))
	})

	It("records the outcome of an adopted Pod that finished while nobody watched", func() {
		reconcile()
		pod := &corev1.Pod{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: job.Namespace, Name: podName(job, 1)}, pod)).To(Succeed())
		rollBackStatus()
		setPodSucceeded(ctx, pod, `{"pages":2}`)

		reconcile()
		done := getJob(Default, ctx, job)
		Expect(done.Status.Phase).To(Equal(ejv1.PhaseSucceeded))
		Expect(string(done.Status.Result.Raw)).To(Equal(`{"pages":2}`))
		Expect(attemptPods(Default, ctx, job)).To(HaveLen(1))
	})

	It("stops an attempt whose start was never recorded when the job is cancelled", func() {
		reconcile()
		rollBackStatus()
		current := getJob(Default, ctx, job)
		current.Spec.Cancel = true
		Expect(k8sClient.Update(ctx, current)).To(Succeed())

		reconcile()
		cancelled := getJob(Default, ctx, job)
		Expect(cancelled.Status.Phase).To(Equal(ejv1.PhaseCancelled))
		Expect(cancelled.Status.Attempts).To(HaveLen(1))
		Expect(cancelled.Status.Attempts[0].Outcome).To(Equal(ejv1.OutcomeCancelled))
		Eventually(func(g Gomega) {
			g.Expect(attemptPods(g, ctx, job)).To(BeEmpty())
		}).Should(Succeed(), "the Pod is deleted and released")
	})

	It("keeps the attempt history within the schema's bound through a real status write", func() {
		current := getJob(Default, ctx, job)
		current.Spec.RetryPolicy.MaxRetries = ptr.To[int32](10)
		Expect(k8sClient.Update(ctx, current)).To(Succeed())

		By("writing a job at the bound of ten records, whose retry is due")
		atBound := current.Status.DeepCopy()
		atBound.Phase, atBound.Attempt, atBound.RetryCount = ejv1.PhaseRetrying, ejv1.MaxAttemptRecords, ejv1.MaxAttemptRecords-1
		atBound.PodName = podName(current, ejv1.MaxAttemptRecords)
		atBound.NextRetryAt = preciseTime(start)
		for n := int32(1); n <= ejv1.MaxAttemptRecords; n++ {
			atBound.Attempts = append(atBound.Attempts, ejv1.AttemptRecord{
				Attempt: n, PodName: podName(current, n), Outcome: ejv1.OutcomeFailed,
				StartTime: metav1.NewTime(start.Add(-time.Hour)), FinishTime: ptrTime(start.Add(-time.Minute)),
				ErrorType: "Werk24Timeout", Class: ejv1.ClassRetryable,
			})
		}
		overBound := current.DeepCopy()
		overBound.Status = *atBound.DeepCopy()
		overBound.Status.Attempts = append(overBound.Status.Attempts, overBound.Status.Attempts[0])
		err := k8sClient.Status().Update(ctx, overBound)
		Expect(apierrors.IsInvalid(err)).To(BeTrue(), "the schema refuses an eleventh record: %v", err)
		current.Status = *atBound
		Expect(k8sClient.Status().Update(ctx, current)).To(Succeed())

		Expect(reconcile()).To(Equal(ctrl.Result{}), "the eleventh attempt's Pod is created")
		Expect(reconcile()).To(Equal(ctrl.Result{}), "the eleventh attempt's status write succeeds")
		written := getJob(Default, ctx, job)
		Expect(written.Status.Attempt).To(BeEquivalentTo(11))
		Expect(written.Status.Attempts).To(HaveLen(ejv1.MaxAttemptRecords))
		Expect(written.Status.Attempts[0].Attempt).To(BeEquivalentTo(2))
		Expect(written.Status.Attempts[ejv1.MaxAttemptRecords-1].Attempt).To(BeEquivalentTo(11))
		Expect(written.Status.Attempts[ejv1.MaxAttemptRecords-1].Outcome).To(Equal(ejv1.OutcomeRunning))
		Expect(attemptExists(11)).To(BeTrue())
	})

	It("forgets its own writes of a cancelled job once the job is deleted", func() {
		reconcile()
		By("the scheduler binding the attempt's Pod to a node, so that its deletion is graceful")
		pod := &corev1.Pod{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: job.Namespace, Name: podName(getJob(Default, ctx, job), 1)}, pod)).To(Succeed())
		Expect(k8sClient.SubResource("binding").Create(ctx, pod, &corev1.Binding{
			ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace},
			Target:     corev1.ObjectReference{Kind: "Node", Name: "worker-1"},
		})).To(Succeed())
		current := getJob(Default, ctx, job)
		current.Spec.Cancel = true
		current.Finalizers = []string{"test.extraction.pybase.io/keep"}
		Expect(k8sClient.Update(ctx, current)).To(Succeed())
		reconcile()
		Expect(getJob(Default, ctx, job).Status.Phase).To(Equal(ejv1.PhaseCancelled))
		Expect(reconciler.expectations.jobs).NotTo(BeEmpty(), "the status write and the Pod's release are expected")

		By("the kubelet ending the released Pod, and the job being deleted")
		Expect(k8sClient.Delete(ctx, pod, client.GracePeriodSeconds(0))).To(Succeed())
		Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(pod), &corev1.Pod{}))
		}).Should(BeTrue())
		Expect(k8sClient.Delete(ctx, job)).To(Succeed())
		reconcile()
		Expect(reconciler.expectations.jobs).To(BeEmpty())

		By("not finding the job once it is gone")
		deleting := getJob(Default, ctx, job)
		reconciler.expectations.expectJobWrite(deleting, deleting.ResourceVersion)
		deleting.Finalizers = nil
		Expect(k8sClient.Update(ctx, deleting)).To(Succeed())
		Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(job), &ejv1.ExtractionJob{}))
		}).Should(BeTrue())
		reconcile()
		Expect(reconciler.expectations.jobs).To(BeEmpty())
	})

	It("keeps a finished attempt's Pod until its outcome is recorded, then releases it", func() {
		reconcile()
		pod := &corev1.Pod{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: job.Namespace, Name: podName(job, 1)}, pod)).To(Succeed())
		Expect(pod.Finalizers).To(ContainElement(ejv1.AttemptTrackingFinalizer))
		setPodSucceeded(ctx, pod, "")
		By("someone deleting the finished Pod before the operator read it")
		Expect(k8sClient.Delete(ctx, pod)).To(Succeed())
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(pod), pod)).To(Succeed(), "the finalizer keeps it")

		reconcile()
		Expect(getJob(Default, ctx, job).Status.Phase).To(Equal(ejv1.PhaseSucceeded), "the work is not run again")
		Expect(apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(pod), pod))).To(BeTrue())
	})

	It("refuses a decision taken on a stale copy of the job", func() {
		reconcile()
		stale := getJob(Default, ctx, job)
		fresh := stale.DeepCopy()
		fresh.Status.Message = "written by someone else"
		Expect(k8sClient.Status().Update(ctx, fresh)).To(Succeed())

		stale.Status.Message = "decided on a stale copy"
		s := &reconcileScope{job: stale, now: fakeClock.Now()}
		original := stale.DeepCopy()
		original.Status.Message = ""
		_, err := reconciler.patchStatus(ctx, original, s, true)
		Expect(apierrors.IsConflict(err)).To(BeTrue(), "err = %v", err)
	})
})

func drain(recorder *events.FakeRecorder) []string {
	var all []string
	for {
		select {
		case e := <-recorder.Events:
			all = append(all, e)
		default:
			return all
		}
	}
}
