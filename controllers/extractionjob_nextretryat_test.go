package controllers

import (
	"context"
	"encoding/json"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
)

var _ = Describe("nextRetryAt", func() {
	var (
		ctx       context.Context
		namespace string
	)
	BeforeEach(func() {
		ctx = context.Background()
		namespace = newNamespace(ctx)
	})

	It("is read, and waited for, when an earlier version stored it with whole seconds", func() {
		By("storing a Retrying job as earlier versions wrote it, out of the operator's sight")
		job := newJob(namespace, "whole-seconds")
		job.Labels = map[string]string{directReconcileLabel: "true"}
		Expect(k8sClient.Create(ctx, job)).To(Succeed())
		due := time.Now().Add(3 * time.Second).Truncate(time.Second).UTC()
		stored := due.Format(time.RFC3339)
		Expect(stored).To(HaveSuffix(":%02dZ", due.Second()), "the stored value has no fraction")
		status := map[string]any{"status": map[string]any{
			"phase": "Retrying", "attempt": 1, "retryCount": 1, "retries": "1/3",
			"podName":     podName(job, 1),
			"nextRetryAt": stored,
			"message":     "Retry 1/3: ConnectionError: connection refused",
			"lastFailure": map[string]any{"errorType": "ConnectionError", "class": "Retryable"},
		}}
		patch, err := json.Marshal(status)
		Expect(err).NotTo(HaveOccurred())
		raw := &unstructured.Unstructured{}
		raw.SetGroupVersionKind(ejv1.GroupVersion.WithKind("ExtractionJob"))
		raw.SetNamespace(namespace)
		raw.SetName(job.Name)
		Expect(k8sClient.Status().Patch(ctx, raw, client.RawPatch("application/merge-patch+json", patch))).To(Succeed())

		By("reading it through the typed client")
		read := getJob(Default, ctx, job)
		Expect(read.Status.NextRetryAt).NotTo(BeNil())
		Expect(read.Status.NextRetryAt.Time).To(BeTemporally("==", due))

		By("handing it to the operator, which waits for the stored time without writing")
		read.Labels = nil
		Expect(k8sClient.Update(ctx, read)).To(Succeed())
		handedOver := getJob(Default, ctx, job).ResourceVersion
		Consistently(func(g Gomega) {
			current := getJob(g, ctx, job)
			g.Expect(current.ResourceVersion).To(Equal(handedOver), "the operator wrote the status of a job waiting for its retry: %+v", current.Status)
		}).WithTimeout(time.Until(due) - 500*time.Millisecond).WithPolling(100 * time.Millisecond).Should(Succeed())

		By("starting the retry at the stored time, not before")
		second := waitForAttemptPod(ctx, job, 2)
		Expect(second.CreationTimestamp.Time).NotTo(BeTemporally("<", due), "the retry Pod was created before nextRetryAt")
		setPodSucceeded(ctx, second, "")
		done := waitForPhase(ctx, job, ejv1.PhaseSucceeded)
		Expect(done.Status.NextRetryAt).To(BeNil())
	})

	It("keeps the fraction of a second the operator wrote, and is written once", func() {
		job := newJob(namespace, "fraction")
		Expect(k8sClient.Create(ctx, job)).To(Succeed())
		setPodFailed(ctx, waitForAttemptPod(ctx, job, 1), 1, "ConnectionError: connection refused")
		retrying := waitForPhase(ctx, job, ejv1.PhaseRetrying)
		Expect(retrying.Status.NextRetryAt).NotTo(BeNil())
		due := retrying.Status.NextRetryAt.Time

		raw := &unstructured.Unstructured{}
		raw.SetGroupVersionKind(ejv1.GroupVersion.WithKind("ExtractionJob"))
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(job), raw)).To(Succeed())
		stored, _, err := unstructured.NestedString(raw.Object, "status", "nextRetryAt")
		Expect(err).NotTo(HaveOccurred())
		Expect(stored).To(Equal(due.UTC().Format("2006-01-02T15:04:05.000000Z07:00")), "stored with microseconds")

		if wait := time.Until(due) - 200*time.Millisecond; wait > 0 {
			Consistently(func(g Gomega) {
				g.Expect(getJob(g, ctx, job).ResourceVersion).To(Equal(retrying.ResourceVersion), "the status was written again while the job waited")
			}).WithTimeout(wait).WithPolling(50 * time.Millisecond).Should(Succeed())
		}
		waitForAttemptPod(ctx, job, 2)
	})
})
