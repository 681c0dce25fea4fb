package controllers

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
		job := newJob(namespace, "whole-seconds")
		job.Spec.RetryPolicy.Backoff.Base = metav1.Duration{Duration: 30 * time.Second}
		Expect(k8sClient.Create(ctx, job)).To(Succeed())
		setPodFailed(ctx, waitForAttemptPod(ctx, job, 1), 1, "ConnectionError: connection refused")
		waitForPhase(ctx, job, ejv1.PhaseRetrying)

		By("storing nextRetryAt as earlier versions wrote it: whole seconds, no fraction")
		due := time.Now().Add(3 * time.Second).Truncate(time.Second).UTC()
		stored := due.Format(time.RFC3339)
		Expect(stored).To(HaveSuffix(":%02dZ", due.Second()))
		raw := &unstructured.Unstructured{}
		raw.SetGroupVersionKind(ejv1.GroupVersion.WithKind("ExtractionJob"))
		raw.SetNamespace(namespace)
		raw.SetName(job.Name)
		patch := []byte(`{"status":{"nextRetryAt":"` + stored + `"}}`)
		Expect(k8sClient.Status().Patch(ctx, raw, client.RawPatch("application/merge-patch+json", patch))).To(Succeed())

		By("reading it through the typed client")
		read := getJob(Default, ctx, job)
		Expect(read.Status.NextRetryAt).NotTo(BeNil())
		Expect(read.Status.NextRetryAt.Time).To(BeTemporally("==", due))

		By("waiting for the stored time without writing the status again")
		Consistently(func(g Gomega) {
			current := getJob(g, ctx, job)
			g.Expect(current.ResourceVersion).To(Equal(read.ResourceVersion), "the operator wrote the status of a job waiting for its retry: %+v", current.Status)
		}).WithTimeout(time.Until(due) - 500*time.Millisecond).WithPolling(100 * time.Millisecond).Should(Succeed())

		By("starting the retry at the stored time, not before, and not at the 30 s it first scheduled")
		second := waitForAttemptPod(ctx, job, 2)
		Expect(second.CreationTimestamp.Time).NotTo(BeTemporally("<", due), "the retry Pod was created before nextRetryAt")
		Expect(second.CreationTimestamp.Time).To(BeTemporally("<", due.Add(10*time.Second)), "the retry waited for the backoff first scheduled")
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
