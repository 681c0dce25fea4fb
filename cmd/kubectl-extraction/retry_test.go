package main

import (
	"bytes"
	"context"
	"encoding/json"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
)

// patchRecorder wraps a client and keeps the body of every patch it sends.
func patchRecorder(patches *[]map[string]any) client.Client {
	c, err := client.NewWithWatch(adminCfg, client.Options{Scheme: testScheme})
	Expect(err).NotTo(HaveOccurred())
	return interceptor.NewClient(c, interceptor.Funcs{
		Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
			data, err := patch.Data(obj)
			Expect(err).NotTo(HaveOccurred())
			var body map[string]any
			Expect(json.Unmarshal(data, &body)).To(Succeed())
			*patches = append(*patches, body)
			return c.Patch(ctx, obj, patch, opts...)
		},
	})
}

var _ = Describe("retry", func() {
	var (
		ctx context.Context
		ns  string
	)
	BeforeEach(func() {
		ctx = context.Background()
		ns = newNamespace(ctx)
	})

	It("sets the retry annotation on a Failed job to the clock's time and says what it did", func() {
		job := jobIn(ctx, ns, "failed", ejv1.ExtractionJobStatus{
			Phase: ejv1.PhaseFailed, Retries: "3/3",
			LastFailure: failure("ConnectionError", ejv1.ClassRetryable, 1, "connection refused"),
		})
		key := client.ObjectKeyFromObject(job)
		var out, errOut bytes.Buffer

		Expect(Retry(ctx, admin, &out, &errOut, key, testNow.Add(1500*time.Millisecond))).To(Succeed())

		got := fetch(ctx, key)
		Expect(got.Annotations).To(HaveKeyWithValue(ejv1.RetryRequestAnnotation, "2031-05-06T07:08:10.5Z"))
		Expect(got.Spec.Cancel).To(BeFalse())
		Expect(out.String()).To(ContainSubstring(ns + "/failed: retry requested (extraction.pybase.io/retry-requested-at=2031-05-06T07:08:10.5Z); it was Failed with ConnectionError"))
		Expect(out.String()).NotTo(ContainSubstring("spec.cancel"))
		Expect(errOut.String()).To(BeEmpty())
	})

	It("writes a new token on every retry, even when the clock has not moved", func() {
		job := jobIn(ctx, ns, "again", ejv1.ExtractionJobStatus{Phase: ejv1.PhaseFailed})
		key := client.ObjectKeyFromObject(job)
		tokens := map[string]bool{}
		retryAt := func(now time.Time) string {
			Expect(Retry(ctx, admin, &bytes.Buffer{}, &bytes.Buffer{}, key, now)).To(Succeed())
			token := fetch(ctx, key).Annotations[ejv1.RetryRequestAnnotation]
			Expect(tokens).NotTo(HaveKey(token), "token %q was used before", token)
			tokens[token] = true
			return token
		}

		first := retryAt(testNow)
		second := retryAt(testNow.Add(time.Minute))
		third := retryAt(testNow.Add(time.Minute))

		// The operator handles the third token and the job fails again.
		got := fetch(ctx, key)
		got.Status.LastHandledRetryRequest = third
		Expect(admin.Status().Update(ctx, got)).To(Succeed())
		fourth := retryAt(testNow.Add(time.Minute))

		Expect([]string{first, second, third, fourth}).To(Equal([]string{
			"2031-05-06T07:08:09Z",
			"2031-05-06T07:09:09Z",
			"2031-05-06T07:09:09Z-2",
			"2031-05-06T07:09:09Z-3",
		}))
	})

	It("on a Cancelled job sets spec.cancel back to false in the same optimistic patch as the annotation", func() {
		job := jobIn(ctx, ns, "cancelled", ejv1.ExtractionJobStatus{Phase: ejv1.PhaseCancelled, Message: "Cancelled."},
			func(j *ejv1.ExtractionJob) { j.Spec.Cancel = true })
		key := client.ObjectKeyFromObject(job)
		var patches []map[string]any
		var out bytes.Buffer

		Expect(Retry(ctx, patchRecorder(&patches), &out, &bytes.Buffer{}, key, testNow)).To(Succeed())

		Expect(patches).To(HaveLen(1))
		Expect(patches[0]).To(HaveKeyWithValue("spec", map[string]any{"cancel": false}))
		Expect(patches[0]).To(HaveKeyWithValue("metadata", And(
			HaveKeyWithValue("annotations", map[string]any{ejv1.RetryRequestAnnotation: "2031-05-06T07:08:09Z"}),
			HaveKey("resourceVersion"),
		)))
		got := fetch(ctx, key)
		Expect(got.Spec.Cancel).To(BeFalse())
		Expect(got.Annotations).To(HaveKeyWithValue(ejv1.RetryRequestAnnotation, "2031-05-06T07:08:09Z"))
		Expect(out.String()).To(ContainSubstring("it was Cancelled"))
		Expect(out.String()).To(ContainSubstring(ns + "/cancelled: spec.cancel set back to false"))
	})

	It("also clears spec.cancel on a Failed job whose cancel came too late, or the operator would cancel the retry", func() {
		job := jobIn(ctx, ns, "failed-then-cancelled", ejv1.ExtractionJobStatus{Phase: ejv1.PhaseFailed},
			func(j *ejv1.ExtractionJob) { j.Spec.Cancel = true })

		Expect(Retry(ctx, admin, &bytes.Buffer{}, &bytes.Buffer{}, client.ObjectKeyFromObject(job), testNow)).To(Succeed())

		Expect(fetch(ctx, client.ObjectKeyFromObject(job)).Spec.Cancel).To(BeFalse())
	})

	DescribeTable("refuses a job the operator would not retry, and leaves it untouched",
		func(phase ejv1.Phase, want string) {
			job := newJob(ctx, ns, "busy")
			if phase != "" {
				setStatus(ctx, job, ejv1.ExtractionJobStatus{Phase: phase})
			}
			key := client.ObjectKeyFromObject(job)

			err := Retry(ctx, admin, &bytes.Buffer{}, &bytes.Buffer{}, key, testNow)

			Expect(err).To(MatchError(ContainSubstring(want)))
			Expect(fetch(ctx, key).Annotations).NotTo(HaveKey(ejv1.RetryRequestAnnotation))
		},
		Entry("when it is Running", ejv1.PhaseRunning, "is Running; only a Failed or Cancelled job can be retried"),
		Entry("when it is Retrying", ejv1.PhaseRetrying, "is Retrying; only a Failed or Cancelled job can be retried"),
		Entry("when it Succeeded", ejv1.PhaseSucceeded, "is Succeeded; only a Failed or Cancelled job can be retried"),
		Entry("when the operator has not started it", ejv1.Phase(""), "has not been started by the operator yet"),
	)

	It("warns, when it takes back a cancel, that a GitOps tool may set it again", func() {
		job := jobIn(ctx, ns, "flux-cancelled", ejv1.ExtractionJobStatus{Phase: ejv1.PhaseCancelled},
			func(j *ejv1.ExtractionJob) {
				j.Spec.Cancel = true
				j.Labels = map[string]string{fluxKustomizationNameLabel: "jobs", fluxKustomizationNamespaceLabel: "flux-system"}
			})
		var errOut bytes.Buffer

		Expect(Retry(ctx, admin, &bytes.Buffer{}, &errOut, client.ObjectKeyFromObject(job), testNow)).To(Succeed())

		Expect(errOut.String()).To(ContainSubstring("managed by Flux (Kustomization flux-system/jobs)"))
		Expect(errOut.String()).To(ContainSubstring("change it in git too"))
	})

	It("reads the job again when it changed before the patch landed, and then refuses what the operator would ignore", func() {
		job := jobIn(ctx, ns, "raced", ejv1.ExtractionJobStatus{Phase: ejv1.PhaseFailed})
		key := client.ObjectKeyFromObject(job)
		c, err := client.NewWithWatch(adminCfg, client.Options{Scheme: testScheme})
		Expect(err).NotTo(HaveOccurred())
		patches := 0
		racing := interceptor.NewClient(c, interceptor.Funcs{
			Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
				patches++
				if patches == 1 {
					// Someone else's retry is handled first: the operator starts the job again.
					started := fetch(ctx, key)
					started.Status.Phase = ejv1.PhaseRunning
					Expect(admin.Status().Update(ctx, started)).To(Succeed())
				}
				return c.Patch(ctx, obj, patch, opts...)
			},
		})

		err = Retry(ctx, racing, &bytes.Buffer{}, &bytes.Buffer{}, key, testNow)

		Expect(err).To(MatchError(ContainSubstring("is Running; only a Failed or Cancelled job can be retried")))
		Expect(patches).To(Equal(1), "the first patch met a Conflict; the second read refused")
		Expect(fetch(ctx, key).Annotations).NotTo(HaveKey(ejv1.RetryRequestAnnotation))
	})

	It("says plainly that a job does not exist", func() {
		err := Retry(ctx, admin, &bytes.Buffer{}, &bytes.Buffer{}, types.NamespacedName{Namespace: ns, Name: "nope"}, testNow)

		Expect(err).To(MatchError(`extractionjob "nope" not found in namespace "` + ns + `"`))
	})
})
