package controllers

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
)

var _ = Describe("An extractor's Retry-After hint", func() {
	ctx := context.Background()
	var namespace string
	BeforeEach(func() { namespace = newNamespace(ctx) })

	It("makes the retry wait as long as the service asked, not the one-second backoff", func() {
		job := newJob(namespace, "retry-after")
		Expect(k8sClient.Create(ctx, job)).To(Succeed())
		first := waitForAttemptPod(ctx, job, 1)
		failedAt := time.Now()
		setPodFailed(ctx, first, 75, "RateLimitExceeded: 429 from api.example\nRetry-After: 4")

		retrying := waitForPhase(ctx, job, ejv1.PhaseRetrying)
		Expect(retrying.Status.Message).To(Equal("Retry 1/3: RateLimitExceeded: 429 from api.example (the service asked to wait 4s)"))
		Expect(retrying.Status.LastFailure.RetryAfter).NotTo(BeNil())
		Expect(retrying.Status.LastFailure.RetryAfter.Duration).To(Equal(4 * time.Second))
		due := retrying.Status.NextRetryAt.Time
		Expect(due).NotTo(BeTemporally("<", failedAt.Add(4*time.Second)), "nextRetryAt is sooner than the hint")
		Expect(due).To(BeTemporally("<", failedAt.Add(4*time.Second+5*time.Second)), "nextRetryAt is far beyond the hint")

		second := waitForAttemptPod(ctx, job, 2)
		// creationTimestamp has whole seconds, truncated.
		Expect(second.CreationTimestamp.Time).NotTo(BeTemporally("<", due.Truncate(time.Second)), "the retry Pod was created before nextRetryAt")
		setPodSucceeded(ctx, second, "")
		waitForPhase(ctx, job, ejv1.PhaseSucceeded)
	})

	It("is heard but not followed when the job's retryAfter is Ignore", func() {
		job := newJob(namespace, "retry-after-ignored")
		job.Spec.RetryPolicy.RetryAfter = ejv1.RetryAfterIgnore
		Expect(k8sClient.Create(ctx, job)).To(Succeed())
		failedAt := time.Now()
		setPodFailed(ctx, waitForAttemptPod(ctx, job, 1), 75, "RateLimitExceeded: 429\nRetry-After: 3600")

		retrying := waitForPhase(ctx, job, ejv1.PhaseRetrying)
		Expect(retrying.Status.Message).To(HaveSuffix("(the service asked to wait 60m; retryAfter is Ignore)"))
		Expect(retrying.Status.NextRetryAt.Time).To(BeTemporally("<", failedAt.Add(time.Minute)), "the hint was followed")
		waitForAttemptPod(ctx, job, 2)
	})
})

var _ = Describe("The ExtractionJob schema's Retry-After fields", func() {
	ctx := context.Background()
	var namespace string
	BeforeEach(func() { namespace = newNamespace(ctx) })

	It("honours hints by default, capped at backoff.max", func() {
		job := newJob(namespace, "retry-after-defaults")
		job.Labels = map[string]string{directReconcileLabel: "true"}
		Expect(k8sClient.Create(ctx, job)).To(Succeed())
		Expect(job.Spec.RetryPolicy.RetryAfter).To(Equal(ejv1.RetryAfterHonor))
		Expect(job.Spec.RetryPolicy.MaxRetryAfter).To(BeNil(), "no default of its own: backoff.max applies")
	})

	DescribeTable("refuses bad values with a message naming the field",
		func(retryPolicy map[string]any, wantInMessage string) {
			object := map[string]any{
				"apiVersion": ejv1.GroupVersion.String(), "kind": "ExtractionJob",
				"metadata": map[string]any{"generateName": "bad-", "namespace": namespace},
				"spec":     map[string]any{"format": "pdf", "source": map[string]any{"url": "s3://b/a.pdf"}, "retryPolicy": retryPolicy},
			}
			err := k8sClient.Create(ctx, unstructuredJob(object))
			Expect(err).To(HaveOccurred())
			Expect(apierrors.IsInvalid(err)).To(BeTrue(), err.Error())
			Expect(err.Error()).To(ContainSubstring(wantInMessage))
		},
		Entry("an unknown retryAfter", map[string]any{"retryAfter": "Sometimes"}, "spec.retryPolicy.retryAfter"),
		Entry("a maxRetryAfter in days", map[string]any{"maxRetryAfter": "1d"}, "spec.retryPolicy.maxRetryAfter"),
		Entry("a zero maxRetryAfter", map[string]any{"maxRetryAfter": "0s"}, "maxRetryAfter must be a positive duration of at most 168h"),
		Entry("a maxRetryAfter over a week", map[string]any{"maxRetryAfter": "169h"}, "maxRetryAfter must be a positive duration of at most 168h"),
	)
})
