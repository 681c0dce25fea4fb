package controllers

import (
	"context"
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
)

var _ = Describe("An ExtractionJob run by the operator", func() {
	var (
		ctx       context.Context
		namespace string
	)
	BeforeEach(func() {
		ctx = context.Background()
		namespace = newNamespace(ctx)
	})

	It("runs one Pod per attempt and keeps the extractor's result on success", func() {
		job := newJob(namespace, "success")
		job.Spec.Options = map[string]string{"pages": "1-3"}
		Expect(k8sClient.Create(ctx, job)).To(Succeed())

		pod := waitForAttemptPod(ctx, job, 1)
		Expect(pod.Spec.Containers[0].Image).To(Equal(pdfTestImage))
		Expect(pod.Labels).To(HaveKeyWithValue(ejv1.AttemptLabel, "1"))
		Expect(metav1.IsControlledBy(pod, getJob(Default, ctx, job))).To(BeTrue())
		pending := waitForPhase(ctx, job, ejv1.PhasePending)
		Expect(pending.Status.PodName).To(Equal(pod.Name))
		Expect(condition(pending, ejv1.ConditionReconciling).Status).To(Equal(metav1.ConditionTrue))

		setPodRunning(ctx, pod)
		waitForPhase(ctx, job, ejv1.PhaseRunning)
		setPodSucceeded(ctx, pod, `{"pages": 3, "sha256": "abc"}`)

		done := waitForPhase(ctx, job, ejv1.PhaseSucceeded)
		Expect(string(done.Status.Result.Raw)).To(Equal(`{"pages":3,"sha256":"abc"}`))
		Expect(done.Status.CompletionTime).NotTo(BeNil())
		Expect(done.Status.Message).To(Equal("Extraction succeeded on attempt 1."))
		Expect(done.Status.Retries).To(Equal("0/3"))
		Expect(condition(done, ejv1.ConditionComplete).Status).To(Equal(metav1.ConditionTrue))
		Expect(condition(done, ejv1.ConditionReady).Status).To(Equal(metav1.ConditionTrue))
		Expect(condition(done, ejv1.ConditionReconciling)).To(BeNil())
		Expect(condition(done, ejv1.ConditionStalled)).To(BeNil())
		Expect(condition(done, ejv1.ConditionFailed)).To(BeNil())
		Expect(done.Status.ObservedGeneration).To(Equal(done.Generation))
		Expect(done.Status.Attempts).To(HaveLen(1))
		Expect(done.Status.Attempts[0].Outcome).To(Equal(ejv1.OutcomeSucceeded))
		Eventually(func(g Gomega) {
			g.Expect(eventNotes(g, ctx, job)).To(ContainElements(
				HavePrefix("AttemptStarted: Started attempt 1"),
				"Succeeded: Extraction succeeded on attempt 1.",
			))
		}).Should(Succeed())
	})

	It("shows Pending with its Pod's name within a second of its creation", func() {
		// The reconcile that creates the Pod writes no status; the one the
		// Pod's first event triggers does, moments later.
		job := newJob(namespace, "visible")
		Expect(k8sClient.Create(ctx, job)).To(Succeed())
		created := time.Now()
		Eventually(func(g Gomega) {
			current := getJob(g, ctx, job)
			g.Expect(current.Status.Phase).To(Equal(ejv1.PhasePending))
			g.Expect(current.Status.PodName).To(Equal(podName(current, 1)))
		}).WithTimeout(time.Second).WithPolling(20*time.Millisecond).Should(Succeed(), "not Pending with its Pod %s after creation", time.Since(created))
		Eventually(func(g Gomega) {
			g.Expect(eventNotes(g, ctx, job)).To(ConsistOf(HavePrefix("AttemptStarted: Started attempt 1")))
		}).Should(Succeed())
	})

	It("retries a retryable error after the backoff, never earlier, and then succeeds", func() {
		job := newJob(namespace, "retry")
		Expect(k8sClient.Create(ctx, job)).To(Succeed())
		first := waitForAttemptPod(ctx, job, 1)
		setPodFailed(ctx, first, 1, "ConnectionError: connection refused by s3.example")

		retrying := waitForPhase(ctx, job, ejv1.PhaseRetrying)
		Expect(retrying.Status.Message).To(Equal("Retry 1/3: ConnectionError: connection refused by s3.example"))
		Expect(retrying.Status.Retries).To(Equal("1/3"))
		Expect(retrying.Status.LastFailure.ErrorType).To(Equal("ConnectionError"))
		Expect(retrying.Status.LastFailure.Class).To(Equal(ejv1.ClassRetryable))
		Expect(*retrying.Status.LastFailure.ExitCode).To(BeEquivalentTo(1))
		Expect(retrying.Status.NextRetryAt).NotTo(BeNil())
		Expect(condition(retrying, ejv1.ConditionReconciling).Reason).To(Equal(ejv1.ReasonRetrying))

		second := waitForAttemptPod(ctx, job, 2)
		// creationTimestamp has whole seconds, truncated.
		Expect(second.CreationTimestamp.Time).NotTo(BeTemporally("<", retrying.Status.NextRetryAt.Truncate(time.Second)),
			"the retry Pod was created before nextRetryAt")
		setPodSucceeded(ctx, second, "")
		done := waitForPhase(ctx, job, ejv1.PhaseSucceeded)
		Expect(done.Status.RetryCount).To(BeEquivalentTo(1))
		Expect(done.Status.Attempts).To(HaveLen(2))
		Expect(done.Status.Attempts[0].ErrorType).To(Equal("ConnectionError"))
		Expect(done.Status.LastFailure).To(BeNil(), "a job that succeeded shows no error")
		Expect(done.Status.Result).To(BeNil())
		Eventually(func(g Gomega) {
			g.Expect(eventNotes(g, ctx, job)).To(ContainElements(
				"AttemptFailed: Attempt 1 failed (Retryable): ConnectionError: connection refused by s3.example",
				HavePrefix("RetryScheduled: Retry 1/3: ConnectionError"),
			))
		}).Should(Succeed())
	})

	It("fails the job once maxRetries retries are spent", func() {
		job := newJob(namespace, "exhausted")
		job.Spec.RetryPolicy.MaxRetries = ptr.To[int32](2)
		Expect(k8sClient.Create(ctx, job)).To(Succeed())
		for attempt := int32(1); attempt <= 3; attempt++ {
			setPodFailed(ctx, waitForAttemptPod(ctx, job, attempt), 1, "ServiceUnavailable: 503 from werk24")
		}
		failed := waitForPhase(ctx, job, ejv1.PhaseFailed)
		Expect(failed.Status.Message).To(Equal("Max retries (2) exceeded. Last error: ServiceUnavailable: 503 from werk24"))
		Expect(failed.Status.Retries).To(Equal("2/2"))
		Expect(failed.Status.Attempt).To(BeEquivalentTo(3))
		Expect(condition(failed, ejv1.ConditionFailed).Reason).To(Equal(ejv1.ReasonMaxRetriesExceeded))
		Expect(condition(failed, ejv1.ConditionStalled).Status).To(Equal(metav1.ConditionTrue))
		Expect(condition(failed, ejv1.ConditionReady).Status).To(Equal(metav1.ConditionFalse))
		Expect(condition(failed, ejv1.ConditionReconciling)).To(BeNil())
		Consistently(func(g Gomega) {
			g.Expect(attemptPods(g, ctx, job)).To(HaveLen(3))
		}).WithTimeout(2 * time.Second).Should(Succeed())
	})

	It("fails at once on a permanent error", func() {
		job := newJob(namespace, "permanent")
		Expect(k8sClient.Create(ctx, job)).To(Succeed())
		setPodFailed(ctx, waitForAttemptPod(ctx, job, 1), 1, "CorruptedFile: xref table is broken\nstack trace")
		failed := waitForPhase(ctx, job, ejv1.PhaseFailed)
		Expect(failed.Status.Message).To(Equal("Permanent error: CorruptedFile: xref table is broken"))
		Expect(failed.Status.RetryCount).To(BeZero())
		Expect(condition(failed, ejv1.ConditionFailed).Reason).To(Equal(ejv1.ReasonPermanentError))
	})

	It("lets a rule of the job override the built-in table", func() {
		job := newJob(namespace, "rule")
		job.Spec.RetryPolicy.Rules = []ejv1.RetryRule{{ExitCodes: []int32{42}, Action: ejv1.RuleActionFail}}
		Expect(k8sClient.Create(ctx, job)).To(Succeed())
		setPodFailed(ctx, waitForAttemptPod(ctx, job, 1), 42, "ConnectionError: but the rule says fail")
		failed := waitForPhase(ctx, job, ejv1.PhaseFailed)
		Expect(failed.Status.LastFailure.Class).To(Equal(ejv1.ClassPermanent))
	})

	It("reads sysexits codes when the extractor gives no error type", func() {
		job := newJob(namespace, "sysexits")
		Expect(k8sClient.Create(ctx, job)).To(Succeed())
		setPodFailed(ctx, waitForAttemptPod(ctx, job, 1), 75, "")
		retrying := waitForPhase(ctx, job, ejv1.PhaseRetrying)
		Expect(retrying.Status.LastFailure.ErrorType).To(Equal("TemporaryFailure"))
	})

	It("retries OOMKilled and deadline failures as retryable", func() {
		oom := newJob(namespace, "oom")
		timeout := newJob(namespace, "timeout")
		timeout.Spec.AttemptTimeout = &metav1.Duration{Duration: 90 * time.Second}
		Expect(k8sClient.Create(ctx, oom)).To(Succeed())
		Expect(k8sClient.Create(ctx, timeout)).To(Succeed())

		setPodTerminated(ctx, waitForAttemptPod(ctx, oom, 1), corev1.PodFailed, 137, "OOMKilled", "")
		timeoutPod := waitForAttemptPod(ctx, timeout, 1)
		Expect(*timeoutPod.Spec.ActiveDeadlineSeconds).To(BeEquivalentTo(90))
		updatePodStatus(ctx, timeoutPod, func(s *corev1.PodStatus) {
			s.Phase, s.Reason, s.Message = corev1.PodFailed, "DeadlineExceeded", "Pod was active on the node longer than the specified deadline"
		})

		Expect(waitForPhase(ctx, oom, ejv1.PhaseRetrying).Status.Message).To(Equal("Retry 1/3: OOMKilled: The extractor ran out of memory."))
		Expect(waitForPhase(ctx, timeout, ejv1.PhaseRetrying).Status.LastFailure.ErrorType).To(Equal(ejv1.ErrorTypeTimeout))
	})

	It("retries an eviction without spending maxRetries", func() {
		job := newJob(namespace, "evicted")
		job.Spec.RetryPolicy.MaxRetries = ptr.To[int32](0)
		Expect(k8sClient.Create(ctx, job)).To(Succeed())
		pod := waitForAttemptPod(ctx, job, 1)
		updatePodStatus(ctx, pod, func(s *corev1.PodStatus) {
			s.Phase, s.Reason, s.Message = corev1.PodFailed, "Evicted", "The node was low on resource: memory."
		})
		retrying := waitForPhase(ctx, job, ejv1.PhaseRetrying)
		Expect(retrying.Status.Message).To(Equal("Disruption 1/5: PodEvicted: The node was low on resource: memory."))
		Expect(retrying.Status.DisruptionCount).To(BeEquivalentTo(1))
		Expect(retrying.Status.RetryCount).To(BeZero())
		Expect(retrying.Status.LastFailure.Class).To(Equal(ejv1.ClassDisruption))

		setPodSucceeded(ctx, waitForAttemptPod(ctx, job, 2), "")
		done := waitForPhase(ctx, job, ejv1.PhaseSucceeded)
		Expect(done.Status.LastFailure).To(BeNil())
		Expect(done.Status.Attempts[0].ErrorType).To(Equal(ejv1.ErrorTypePodEvicted))
	})

	It("treats a Pod deleted under a running attempt as a disruption", func() {
		job := newJob(namespace, "deleted")
		Expect(k8sClient.Create(ctx, job)).To(Succeed())
		pod := waitForAttemptPod(ctx, job, 1)
		setPodRunning(ctx, pod)
		waitForPhase(ctx, job, ejv1.PhaseRunning)
		Expect(k8sClient.Delete(ctx, pod)).To(Succeed())

		retrying := waitForPhase(ctx, job, ejv1.PhaseRetrying)
		Expect(retrying.Status.LastFailure.ErrorType).To(Equal(ejv1.ErrorTypePodDeleted))
		Expect(retrying.Status.DisruptionCount).To(BeEquivalentTo(1))
		waitForAttemptPod(ctx, job, 2)
	})

	It("fails an attempt whose image cannot be pulled after the grace period", func() {
		job := newJob(namespace, "pull")
		Expect(k8sClient.Create(ctx, job)).To(Succeed())
		pod := waitForAttemptPod(ctx, job, 1)
		updatePodStatus(ctx, pod, func(s *corev1.PodStatus) {
			s.Phase = corev1.PodPending
			s.ContainerStatuses = []corev1.ContainerStatus{{Name: extractorContainerName, State: corev1.ContainerState{
				Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: "Back-off pulling image"},
			}}}
		})
		Consistently(func(g Gomega) {
			g.Expect(getJob(g, ctx, job).Status.Phase).To(Equal(ejv1.PhasePending))
		}).WithTimeout(testPullGrace / 2).Should(Succeed())

		retrying := waitForPhase(ctx, job, ejv1.PhaseRetrying)
		Expect(retrying.Status.Message).To(Equal("Retry 1/3: ImagePullError: Back-off pulling image"))
		Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(pod), &corev1.Pod{}))
		}).Should(BeTrue(), "the stuck Pod is deleted")
	})

	It("fails at once on an invalid image name", func() {
		job := newJob(namespace, "badimage")
		Expect(k8sClient.Create(ctx, job)).To(Succeed())
		updatePodStatus(ctx, waitForAttemptPod(ctx, job, 1), func(s *corev1.PodStatus) {
			s.ContainerStatuses = []corev1.ContainerStatus{{Name: extractorContainerName, State: corev1.ContainerState{
				Waiting: &corev1.ContainerStateWaiting{Reason: "InvalidImageName", Message: "couldn't parse image name"},
			}}}
		})
		Expect(waitForPhase(ctx, job, ejv1.PhaseFailed).Status.Message).To(Equal("Permanent error: InvalidImageName: couldn't parse image name"))
	})

	Describe("cancel", func() {
		cancel := func(job *ejv1.ExtractionJob) {
			GinkgoHelper()
			patch := client.MergeFrom(job.DeepCopy())
			job.Spec.Cancel = true
			Expect(k8sClient.Patch(ctx, job, patch)).To(Succeed())
		}

		It("cancels a pending job and deletes its Pod", func() {
			job := newJob(namespace, "cancel-pending")
			Expect(k8sClient.Create(ctx, job)).To(Succeed())
			pod := waitForAttemptPod(ctx, job, 1)
			waitForPhase(ctx, job, ejv1.PhasePending)
			cancel(job)
			cancelled := waitForPhase(ctx, job, ejv1.PhaseCancelled)
			Expect(cancelled.Status.Message).To(Equal("Cancelled by spec.cancel."))
			Expect(condition(cancelled, ejv1.ConditionFailed).Reason).To(Equal(ejv1.ReasonCancelled))
			Expect(condition(cancelled, ejv1.ConditionStalled).Status).To(Equal(metav1.ConditionTrue))
			Expect(cancelled.Status.Attempts[0].Outcome).To(Equal(ejv1.OutcomeCancelled))
			Eventually(func() bool {
				return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(pod), &corev1.Pod{}))
			}).Should(BeTrue())
		})

		It("cancels a running job and deletes its Pod", func() {
			job := newJob(namespace, "cancel-running")
			Expect(k8sClient.Create(ctx, job)).To(Succeed())
			pod := waitForAttemptPod(ctx, job, 1)
			setPodRunning(ctx, pod)
			waitForPhase(ctx, job, ejv1.PhaseRunning)
			cancel(job)
			waitForPhase(ctx, job, ejv1.PhaseCancelled)
			Eventually(func() bool {
				return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(pod), &corev1.Pod{}))
			}).Should(BeTrue())
		})

		It("cancels a retrying job before its next attempt starts", func() {
			job := newJob(namespace, "cancel-retrying")
			job.Spec.RetryPolicy.Backoff.Base = metav1.Duration{Duration: 5 * time.Second}
			Expect(k8sClient.Create(ctx, job)).To(Succeed())
			setPodFailed(ctx, waitForAttemptPod(ctx, job, 1), 1, "TimeoutError: slow")
			waitForPhase(ctx, job, ejv1.PhaseRetrying)
			cancel(job)
			cancelled := waitForPhase(ctx, job, ejv1.PhaseCancelled)
			Expect(cancelled.Status.NextRetryAt).To(BeNil())
			Consistently(func(g Gomega) {
				g.Expect(attemptPods(g, ctx, job)).To(HaveLen(1))
			}).WithTimeout(6 * time.Second).Should(Succeed())
		})

		It("leaves a finished job as it is and says so", func() {
			job := newJob(namespace, "cancel-finished")
			Expect(k8sClient.Create(ctx, job)).To(Succeed())
			setPodSucceeded(ctx, waitForAttemptPod(ctx, job, 1), "")
			waitForPhase(ctx, job, ejv1.PhaseSucceeded)
			cancel(job)
			Eventually(func(g Gomega) {
				current := getJob(g, ctx, job)
				g.Expect(current.Status.ObservedGeneration).To(Equal(current.Generation))
				g.Expect(current.Status.Phase).To(Equal(ejv1.PhaseSucceeded))
				g.Expect(eventNotes(g, ctx, job)).To(ContainElement("CancelIgnored: The job already finished as Succeeded; cancel changes nothing."))
			}).Should(Succeed())
		})
	})

	Describe("manual retry", func() {
		requestRetry := func(job *ejv1.ExtractionJob, token string) {
			GinkgoHelper()
			current := getJob(Default, ctx, job)
			patch := client.MergeFrom(current.DeepCopy())
			if current.Annotations == nil {
				current.Annotations = map[string]string{}
			}
			current.Annotations[ejv1.RetryRequestAnnotation] = token
			Expect(k8sClient.Patch(ctx, current, patch)).To(Succeed())
		}

		It("starts a failed job again with a fresh budget and a new attempt", func() {
			job := newJob(namespace, "manual")
			Expect(k8sClient.Create(ctx, job)).To(Succeed())
			setPodFailed(ctx, waitForAttemptPod(ctx, job, 1), 1, "AuthenticationFailed: bad key")
			waitForPhase(ctx, job, ejv1.PhaseFailed)

			requestRetry(job, "2026-11-28T10:00:00Z")
			pod := waitForAttemptPod(ctx, job, 2)
			restarted := getJob(Default, ctx, job)
			Expect(restarted.Status.Phase).To(Equal(ejv1.PhasePending))
			Expect(restarted.Status.RetryCount).To(BeZero())
			Expect(restarted.Status.LastHandledRetryRequest).To(Equal("2026-11-28T10:00:00Z"))
			Expect(restarted.Status.CompletionTime).To(BeNil())
			Expect(condition(restarted, ejv1.ConditionFailed)).To(BeNil())
			setPodSucceeded(ctx, pod, "")
			waitForPhase(ctx, job, ejv1.PhaseSucceeded)
			Eventually(func(g Gomega) {
				g.Expect(eventNotes(g, ctx, job)).To(ContainElement(HavePrefix("ManualRetry: Manual retry requested")))
			}).Should(Succeed())

			By("re-applying the same token changing nothing")
			requestRetry(job, "2026-11-28T10:00:00Z")
			Consistently(func(g Gomega) {
				g.Expect(getJob(g, ctx, job).Status.Phase).To(Equal(ejv1.PhaseSucceeded))
				g.Expect(attemptPods(g, ctx, job)).To(HaveLen(2))
			}).WithTimeout(2 * time.Second).Should(Succeed())
		})

		It("announces a manual retry whose first Pod the API server refuses", func() {
			job := newJob(namespace, "manual-quota")
			Expect(k8sClient.Create(ctx, job)).To(Succeed())
			setPodFailed(ctx, waitForAttemptPod(ctx, job, 1), 1, "AuthenticationFailed: bad key")
			waitForPhase(ctx, job, ejv1.PhaseFailed)

			By("a ResourceQuota that admits no more Pods to the namespace")
			noPods := corev1.ResourceList{corev1.ResourcePods: resource.MustParse("0")}
			quota := &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "no-pods"},
				Spec: corev1.ResourceQuotaSpec{Hard: noPods}}
			Expect(k8sClient.Create(ctx, quota)).To(Succeed())
			// envtest runs no quota controller: the test writes the usage it would.
			quota.Status = corev1.ResourceQuotaStatus{Hard: noPods, Used: noPods}
			Expect(k8sClient.Status().Update(ctx, quota)).To(Succeed())
			Eventually(func(g Gomega) {
				probe, err := attemptPod(getJob(g, ctx, job), 99, testDefaultClasses()[0])
				g.Expect(err).NotTo(HaveOccurred())
				err = k8sClient.Create(ctx, probe, client.DryRunAll)
				g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "creating a Pod: %v", err)
			}).WithTimeout(10*time.Second).Should(Succeed(), "quota admission refuses Pods")

			before := scrape(Default)
			requestRetry(job, "under-quota")
			Eventually(func(g Gomega) {
				current := getJob(g, ctx, job)
				g.Expect(current.Status.LastHandledRetryRequest).To(Equal("under-quota"))
				g.Expect(current.Status.Phase).To(Equal(ejv1.PhasePending))
				g.Expect(eventNotes(g, ctx, job)).To(ContainElements(
					HavePrefix("PodCreateFailed: Creating the Pod of attempt 2 failed"),
					`ManualRetry: Manual retry requested with token "under-quota" after the job was Failed.`))
				g.Expect(sample(scrape(g), "extractionjob_manual_retries_total", nil) -
					sample(before, "extractionjob_manual_retries_total", nil)).To(BeEquivalentTo(1))
			}).WithTimeout(10 * time.Second).Should(Succeed())
			Expect(attemptPods(Default, ctx, job)).To(HaveLen(1))

			By("starting the attempt once the quota is gone, with the retry announced once")
			Expect(k8sClient.Delete(ctx, quota)).To(Succeed())
			waitForAttemptPod(ctx, job, 2)
			Expect(eventNotes(Default, ctx, job)).To(ContainElement(HavePrefix("ManualRetry:")))
			manualRetryEvents := 0
			for _, note := range eventNotes(Default, ctx, job) {
				if strings.HasPrefix(note, "ManualRetry:") {
					manualRetryEvents++
				}
			}
			Expect(manualRetryEvents).To(Equal(1))
		})

		It("records but refuses a request on a job that has not failed", func() {
			job := newJob(namespace, "manual-running")
			Expect(k8sClient.Create(ctx, job)).To(Succeed())
			setPodRunning(ctx, waitForAttemptPod(ctx, job, 1))
			waitForPhase(ctx, job, ejv1.PhaseRunning)
			requestRetry(job, "first")
			Eventually(func(g Gomega) {
				current := getJob(g, ctx, job)
				g.Expect(current.Status.LastHandledRetryRequest).To(Equal("first"))
				g.Expect(current.Status.Attempt).To(BeEquivalentTo(1))
				g.Expect(eventNotes(g, ctx, job)).To(ContainElement(
					`RetryRequestIgnored: Retry request "first" ignored: the job is Running; only Failed or Cancelled jobs can be retried.`))
			}).Should(Succeed())
		})

		It("refuses to restart a failed job while spec.cancel is true", func() {
			job := newJob(namespace, "manual-failed-cancel")
			Expect(k8sClient.Create(ctx, job)).To(Succeed())
			setPodFailed(ctx, waitForAttemptPod(ctx, job, 1), 1, "CorruptedFile: x")
			waitForPhase(ctx, job, ejv1.PhaseFailed)
			current := getJob(Default, ctx, job)
			patch := client.MergeFrom(current.DeepCopy())
			current.Spec.Cancel = true
			Expect(k8sClient.Patch(ctx, current, patch)).To(Succeed())

			requestRetry(job, "blocked")
			Eventually(func(g Gomega) {
				g.Expect(getJob(g, ctx, job).Status.LastHandledRetryRequest).To(Equal("blocked"))
				g.Expect(eventNotes(g, ctx, job)).To(ContainElement(
					`RetryRequestIgnored: Retry request "blocked" ignored: the job is Failed and spec.cancel is true; set it to false to retry.`))
			}).Should(Succeed())
			Expect(getJob(Default, ctx, job).Status.Phase).To(Equal(ejv1.PhaseFailed))
			Expect(attemptPods(Default, ctx, job)).To(HaveLen(1))
		})

		It("restarts a cancelled job once spec.cancel is false again", func() {
			job := newJob(namespace, "manual-cancelled")
			job.Spec.Cancel = true
			Expect(k8sClient.Create(ctx, job)).To(Succeed())
			waitForPhase(ctx, job, ejv1.PhaseCancelled)

			requestRetry(job, "while-cancelled")
			Eventually(func(g Gomega) {
				g.Expect(getJob(g, ctx, job).Status.LastHandledRetryRequest).To(Equal("while-cancelled"))
			}).Should(Succeed())
			Expect(getJob(Default, ctx, job).Status.Phase).To(Equal(ejv1.PhaseCancelled))

			current := getJob(Default, ctx, job)
			patch := client.MergeFrom(current.DeepCopy())
			current.Spec.Cancel = false
			current.Annotations[ejv1.RetryRequestAnnotation] = "after-uncancel"
			Expect(k8sClient.Patch(ctx, current, patch)).To(Succeed())
			waitForAttemptPod(ctx, job, 1)
			waitForPhase(ctx, job, ejv1.PhasePending)
		})
	})

	It("releases the Pods of a deleted job so the garbage collector can remove them", func() {
		job := newJob(namespace, "deleted-job")
		Expect(k8sClient.Create(ctx, job)).To(Succeed())
		pod := waitForAttemptPod(ctx, job, 1)
		setPodRunning(ctx, pod)
		waitForPhase(ctx, job, ejv1.PhaseRunning)

		Expect(k8sClient.Delete(ctx, job)).To(Succeed())
		By("playing the garbage collector, which envtest lacks")
		Expect(k8sClient.Delete(ctx, pod)).To(Succeed())
		Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(pod), &corev1.Pod{}))
		}).Should(BeTrue(), "the tracking finalizer is released")
	})

	It("deletes nothing and writes nothing for a job that finished before the operator restarted", func() {
		job := newJob(namespace, "finished-before-restart")
		Expect(k8sClient.Create(ctx, job)).To(Succeed())
		setPodSucceeded(ctx, waitForAttemptPod(ctx, job, 1), "")
		done := waitForPhase(ctx, job, ejv1.PhaseSucceeded)

		stopOp()
		stopOp = startOperator()
		Consistently(func(g Gomega) {
			g.Expect(getJob(g, ctx, job).ResourceVersion).To(Equal(done.ResourceVersion))
		}).WithTimeout(2 * time.Second).Should(Succeed())
	})

	It("keeps the scheduled retry time across an operator restart during the backoff", func() {
		job := newJob(namespace, "restart")
		job.Spec.RetryPolicy.Backoff.Base = metav1.Duration{Duration: 4 * time.Second}
		Expect(k8sClient.Create(ctx, job)).To(Succeed())
		setPodFailed(ctx, waitForAttemptPod(ctx, job, 1), 1, "RateLimitExceeded: 429")
		retrying := waitForPhase(ctx, job, ejv1.PhaseRetrying)
		scheduled := retrying.Status.NextRetryAt.Time

		stopOp()
		stopOp = startOperator()

		second := waitForAttemptPod(ctx, job, 2)
		Expect(second.CreationTimestamp.Time).NotTo(BeTemporally("<", scheduled.Truncate(time.Second)), "creationTimestamp has whole seconds, truncated")
		Expect(getJob(Default, ctx, job).Status.RetryCount).To(BeEquivalentTo(1), "the restart neither spent nor reset the budget")
		Expect(attemptPods(Default, ctx, job)).To(HaveLen(2))
	})
})

var _ = Describe("The ExtractionJob schema", func() {
	ctx := context.Background()
	var namespace string
	BeforeEach(func() { namespace = newNamespace(ctx) })

	It("fills in every retry policy default", func() {
		job := &ejv1.ExtractionJob{
			ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "defaults", Labels: map[string]string{directReconcileLabel: "true"}},
			Spec:       ejv1.ExtractionJobSpec{Format: ejv1.FormatIFC, Source: ejv1.Source{URL: "https://example.com/a.ifc"}},
		}
		Expect(k8sClient.Create(ctx, job)).To(Succeed())
		policy := job.Spec.RetryPolicy
		Expect(*policy.MaxRetries).To(BeEquivalentTo(3))
		Expect(*policy.MaxDisruptions).To(BeEquivalentTo(5))
		Expect(policy.Backoff.Base.Duration).To(Equal(30 * time.Second))
		Expect(policy.Backoff.Multiplier).To(BeEquivalentTo(4))
		Expect(policy.Backoff.Max.Duration).To(Equal(time.Hour))
		Expect(*policy.Backoff.JitterPercent).To(BeEquivalentTo(25))
	})

	DescribeTable("refuses bad values with a message naming the field",
		func(mutate func(map[string]any), wantInMessage string) {
			object := map[string]any{
				"apiVersion": ejv1.GroupVersion.String(), "kind": "ExtractionJob",
				"metadata": map[string]any{"generateName": "bad-", "namespace": namespace},
				"spec":     map[string]any{"format": "pdf", "source": map[string]any{"url": "s3://b/a.pdf"}},
			}
			mutate(object["spec"].(map[string]any))
			err := k8sClient.Create(ctx, unstructuredJob(object))
			Expect(err).To(HaveOccurred())
			Expect(apierrors.IsInvalid(err)).To(BeTrue(), err.Error())
			Expect(err.Error()).To(ContainSubstring(wantInMessage))
		},
		Entry("an unknown format", func(s map[string]any) { s["format"] = "docx" }, "spec.format"),
		Entry("an empty URL", func(s map[string]any) { s["source"] = map[string]any{"url": ""} }, "spec.source.url"),
		Entry("negative retries", func(s map[string]any) { s["retryPolicy"] = map[string]any{"maxRetries": -1} }, "spec.retryPolicy.maxRetries"),
		Entry("too many retries", func(s map[string]any) { s["retryPolicy"] = map[string]any{"maxRetries": 11} }, "spec.retryPolicy.maxRetries"),
		Entry("too many disruptions", func(s map[string]any) { s["retryPolicy"] = map[string]any{"maxDisruptions": 21} }, "spec.retryPolicy.maxDisruptions"),
		Entry("a duration in days", func(s map[string]any) { s["retryPolicy"] = backoff("base", "1d") }, "spec.retryPolicy.backoff.base"),
		Entry("a negative duration", func(s map[string]any) { s["retryPolicy"] = backoff("base", "-5s") }, "spec.retryPolicy.backoff.base"),
		Entry("a zero duration", func(s map[string]any) { s["retryPolicy"] = backoff("max", "0s") }, "spec.retryPolicy.backoff.max"),
		Entry("jitter over 100", func(s map[string]any) { s["retryPolicy"] = backoff("jitterPercent", 101) }, "spec.retryPolicy.backoff.jitterPercent"),
		Entry("a multiplier of 0", func(s map[string]any) { s["retryPolicy"] = backoff("multiplier", 0) }, "spec.retryPolicy.backoff.multiplier"),
		Entry("an attempt timeout under a second", func(s map[string]any) { s["attemptTimeout"] = "500ms" }, "spec.attemptTimeout"),
		Entry("more than 20 rules", func(s map[string]any) {
			rules := make([]any, 21)
			for i := range rules {
				rules[i] = map[string]any{"exitCodes": []any{1}, "action": "Fail"}
			}
			s["retryPolicy"] = map[string]any{"rules": rules}
		}, "spec.retryPolicy.rules"),
		Entry("a rule with two matchers", func(s map[string]any) {
			s["retryPolicy"] = map[string]any{"rules": []any{map[string]any{"exitCodes": []any{1}, "reasons": []any{"OOMKilled"}, "action": "Fail"}}}
		}, "exactly one of errorTypes, exitCodes or reasons"),
		Entry("a rule without a matcher", func(s map[string]any) {
			s["retryPolicy"] = map[string]any{"rules": []any{map[string]any{"action": "Fail"}}}
		}, "exactly one of errorTypes, exitCodes or reasons"),
		Entry("an unknown rule action", func(s map[string]any) {
			s["retryPolicy"] = map[string]any{"rules": []any{map[string]any{"exitCodes": []any{1}, "action": "Maybe"}}}
		}, "spec.retryPolicy.rules[0].action"),
		Entry("a reserved pod label", func(s map[string]any) {
			s["podTemplate"] = map[string]any{"metadata": map[string]any{"labels": map[string]any{"extraction.pybase.io/attempt": "9"}}}
		}, "spec.podTemplate.metadata.labels"),
		Entry("a reserved pod annotation", func(s map[string]any) {
			s["podTemplate"] = map[string]any{"metadata": map[string]any{"annotations": map[string]any{"extraction.pybase.io/job-uid": "x"}}}
		}, "spec.podTemplate.metadata.annotations"),
		Entry("no format", func(s map[string]any) { delete(s, "format") }, "spec.format"),
		Entry("no source", func(s map[string]any) { delete(s, "source") }, "spec.source"),
		Entry("a URL over 2048 characters", func(s map[string]any) {
			s["source"] = map[string]any{"url": "https://e.x/" + strings.Repeat("a", 2048)}
		}, "spec.source.url"),
		Entry("a Secret name that is no DNS name", func(s map[string]any) {
			s["source"] = map[string]any{"url": "s3://b/a.pdf", "secretRef": map[string]any{"name": "Bad_Name"}}
		}, "spec.source.secretRef.name"),
		Entry("an empty Secret name", func(s map[string]any) {
			s["source"] = map[string]any{"url": "s3://b/a.pdf", "secretRef": map[string]any{"name": ""}}
		}, "spec.source.secretRef.name"),
		Entry("more than 64 options", func(s map[string]any) {
			options := map[string]any{}
			for i := range 65 {
				options[fmt.Sprintf("k%d", i)] = "v"
			}
			s["options"] = options
		}, "spec.options"),
		Entry("an attempt timeout in days", func(s map[string]any) { s["attemptTimeout"] = "1d" }, "spec.attemptTimeout"),
		Entry("an attempt timeout that is no duration", func(s map[string]any) { s["attemptTimeout"] = "soon" }, "spec.attemptTimeout"),
		Entry("an attempt timeout over 168h", func(s map[string]any) { s["attemptTimeout"] = "169h" }, "spec.attemptTimeout"),
		Entry("a base over 24h", func(s map[string]any) { s["retryPolicy"] = backoff("base", "25h") }, "spec.retryPolicy.backoff.base"),
		Entry("a max over 168h", func(s map[string]any) { s["retryPolicy"] = backoff("max", "200h") }, "spec.retryPolicy.backoff.max"),
		Entry("negative jitter", func(s map[string]any) { s["retryPolicy"] = backoff("jitterPercent", -1) }, "spec.retryPolicy.backoff.jitterPercent"),
		Entry("a multiplier over 10", func(s map[string]any) { s["retryPolicy"] = backoff("multiplier", 11) }, "spec.retryPolicy.backoff.multiplier"),
		Entry("negative disruptions", func(s map[string]any) { s["retryPolicy"] = map[string]any{"maxDisruptions": -1} }, "spec.retryPolicy.maxDisruptions"),
		Entry("retries that are not a number", func(s map[string]any) { s["retryPolicy"] = map[string]any{"maxRetries": "three"} }, "spec.retryPolicy.maxRetries"),
		Entry("cancel that is not a boolean", func(s map[string]any) { s["cancel"] = "yes" }, "spec.cancel"),
		Entry("exit code 0 in a rule", func(s map[string]any) { s["retryPolicy"] = rule("exitCodes", []any{0}) }, "spec.retryPolicy.rules[0].exitCodes[0]"),
		Entry("exit code 256 in a rule", func(s map[string]any) { s["retryPolicy"] = rule("exitCodes", []any{256}) }, "spec.retryPolicy.rules[0].exitCodes[0]"),
		Entry("an empty matcher list", func(s map[string]any) { s["retryPolicy"] = rule("errorTypes", []any{}) }, "spec.retryPolicy.rules[0].errorTypes"),
		Entry("an empty error type", func(s map[string]any) { s["retryPolicy"] = rule("errorTypes", []any{""}) }, "spec.retryPolicy.rules[0].errorTypes[0]"),
		Entry("an error type over 64 characters", func(s map[string]any) {
			s["retryPolicy"] = rule("errorTypes", []any{strings.Repeat("E", 65)})
		}, "spec.retryPolicy.rules[0].errorTypes[0]"),
		Entry("a negative TTL", func(s map[string]any) { s["ttlSecondsAfterFinished"] = -1 }, "spec.ttlSecondsAfterFinished"),
	)

	It("refuses unknown fields when the client asks for strict validation, as kubectl does", func() {
		object := map[string]any{
			"apiVersion": ejv1.GroupVersion.String(), "kind": "ExtractionJob",
			"metadata": map[string]any{"generateName": "strict-", "namespace": namespace},
			"spec":     map[string]any{"format": "pdf", "source": map[string]any{"url": "s3://b/a.pdf"}, "colour": "blue"},
		}
		err := k8sClient.Create(ctx, unstructuredJob(object), client.FieldValidation("Strict"))
		Expect(err).To(HaveOccurred())
		Expect(err.Error()).To(ContainSubstring(`unknown field "spec.colour"`))
	})

	DescribeTable("accepts values at the edges of their range",
		func(mutate func(map[string]any)) {
			object := map[string]any{
				"apiVersion": ejv1.GroupVersion.String(), "kind": "ExtractionJob",
				"metadata": map[string]any{
					"generateName": "edge-", "namespace": namespace,
					"labels": map[string]any{directReconcileLabel: "true"},
				},
				"spec": map[string]any{"format": "step", "source": map[string]any{"url": "s3://b/a.stp"}},
			}
			mutate(object["spec"].(map[string]any))
			Expect(k8sClient.Create(ctx, unstructuredJob(object), client.FieldValidation("Strict"))).To(Succeed())
		},
		Entry("no retries at all", func(s map[string]any) { s["retryPolicy"] = map[string]any{"maxRetries": 0, "maxDisruptions": 0} }),
		Entry("the most retries and disruptions", func(s map[string]any) { s["retryPolicy"] = map[string]any{"maxRetries": 10, "maxDisruptions": 20} }),
		Entry("no jitter and full jitter", func(s map[string]any) { s["retryPolicy"] = backoff("jitterPercent", 0) }),
		Entry("jitter of 100", func(s map[string]any) { s["retryPolicy"] = backoff("jitterPercent", 100) }),
		Entry("multipliers 1 and 10", func(s map[string]any) { s["retryPolicy"] = backoff("multiplier", 10) }),
		Entry("a nanosecond base", func(s map[string]any) { s["retryPolicy"] = backoff("base", "1ns") }),
		Entry("a compound duration", func(s map[string]any) { s["retryPolicy"] = backoff("max", "1h30m0.5s") }),
		Entry("attempt timeouts of 1s and 168h", func(s map[string]any) { s["attemptTimeout"] = "168h" }),
		Entry("exit codes 1 and 255", func(s map[string]any) { s["retryPolicy"] = rule("exitCodes", []any{1, 255}) }),
		Entry("exactly 20 rules", func(s map[string]any) {
			rules := make([]any, 20)
			for i := range rules {
				rules[i] = map[string]any{"reasons": []any{"Evicted"}, "action": "Ignore"}
			}
			s["retryPolicy"] = map[string]any{"rules": rules}
		}),
		Entry("a TTL of 0", func(s map[string]any) { s["ttlSecondsAfterFinished"] = 0 }),
	)

	It("refuses to change format or source after creation", func() {
		job := newJob(namespace, "immutable")
		job.Labels = map[string]string{directReconcileLabel: "true"}
		Expect(k8sClient.Create(ctx, job)).To(Succeed())

		changed := job.DeepCopy()
		changed.Spec.Format = ejv1.FormatDXF
		err := k8sClient.Update(ctx, changed)
		Expect(apierrors.IsInvalid(err)).To(BeTrue())
		Expect(err.Error()).To(ContainSubstring("format is immutable"))

		changed = job.DeepCopy()
		changed.Spec.Source.URL = "s3://elsewhere/b.pdf"
		err = k8sClient.Update(ctx, changed)
		Expect(apierrors.IsInvalid(err)).To(BeTrue())
		Expect(err.Error()).To(ContainSubstring("source is immutable"))

		allowed := job.DeepCopy()
		allowed.Spec.RetryPolicy.MaxRetries = ptr.To[int32](5)
		Expect(k8sClient.Update(ctx, allowed)).To(Succeed())
	})
})

func unstructuredJob(object map[string]any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: object}
}

func rule(matcher string, values []any) map[string]any {
	return map[string]any{"rules": []any{map[string]any{matcher: values, "action": "Fail"}}}
}

func backoff(field string, value any) map[string]any {
	return map[string]any{"backoff": map[string]any{field: value}}
}
