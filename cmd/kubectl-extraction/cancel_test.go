package main

import (
	"bytes"
	"context"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
)

var _ = Describe("cancel", func() {
	var (
		ctx context.Context
		ns  string
	)
	BeforeEach(func() {
		ctx = context.Background()
		ns = newNamespace(ctx)
	})

	It("sets spec.cancel on a running job, says so, and warns about nothing when no GitOps tool manages it", func() {
		job := jobIn(ctx, ns, "running", ejv1.ExtractionJobStatus{Phase: ejv1.PhaseRunning, Attempt: 1})
		key := client.ObjectKeyFromObject(job)
		var out, errOut bytes.Buffer

		Expect(Cancel(ctx, admin, &out, &errOut, key)).To(Succeed())

		Expect(fetch(ctx, key).Spec.Cancel).To(BeTrue())
		Expect(out.String()).To(Equal("extractionjob " + ns + "/running: cancel requested (spec.cancel=true); it was Running\n"))
		Expect(errOut.String()).To(BeEmpty())
	})

	It("records the plugin as the field manager of spec.cancel", func() {
		job := jobIn(ctx, ns, "managed", ejv1.ExtractionJobStatus{Phase: ejv1.PhasePending})

		Expect(Cancel(ctx, admin, &bytes.Buffer{}, &bytes.Buffer{}, client.ObjectKeyFromObject(job))).To(Succeed())

		var managers []string
		for _, entry := range fetch(ctx, client.ObjectKeyFromObject(job)).ManagedFields {
			managers = append(managers, entry.Manager)
		}
		Expect(managers).To(ContainElement(fieldManager))
	})

	It("leaves a finished job alone and says why", func() {
		job := jobIn(ctx, ns, "done", ejv1.ExtractionJobStatus{Phase: ejv1.PhaseSucceeded})
		var out bytes.Buffer

		Expect(Cancel(ctx, admin, &out, &bytes.Buffer{}, client.ObjectKeyFromObject(job))).To(Succeed())

		Expect(fetch(ctx, client.ObjectKeyFromObject(job)).Spec.Cancel).To(BeFalse())
		Expect(out.String()).To(ContainSubstring("already finished as Succeeded; cancel would change nothing"))
	})

	It("does nothing when the cancel was already requested", func() {
		job := jobIn(ctx, ns, "twice", ejv1.ExtractionJobStatus{Phase: ejv1.PhaseCancelled},
			func(j *ejv1.ExtractionJob) { j.Spec.Cancel = true })
		before := fetch(ctx, client.ObjectKeyFromObject(job)).ResourceVersion
		var out bytes.Buffer

		Expect(Cancel(ctx, admin, &out, &bytes.Buffer{}, client.ObjectKeyFromObject(job))).To(Succeed())

		Expect(out.String()).To(ContainSubstring("cancel was already requested (phase Cancelled)"))
		Expect(fetch(ctx, client.ObjectKeyFromObject(job)).ResourceVersion).To(Equal(before))
	})

	DescribeTable("warns on stderr that a GitOps tool will revert the cancel unless it goes to git",
		func(manager string, labels, annotations map[string]string, want string) {
			job := newJob(ctx, ns, "gitops", func(j *ejv1.ExtractionJob) {
				j.Labels, j.Annotations = labels, annotations
			})
			if manager != "" {
				// Let the GitOps tool's field manager own the labels, as a sync does.
				Expect(admin.Patch(ctx, job, client.RawPatch("application/merge-patch+json",
					[]byte(`{"metadata":{"labels":{"synced":"yes"}}}`)), client.FieldOwner(manager))).To(Succeed())
			}
			setStatus(ctx, job, ejv1.ExtractionJobStatus{Phase: ejv1.PhaseRetrying})
			var out, errOut bytes.Buffer

			Expect(Cancel(ctx, admin, &out, &errOut, client.ObjectKeyFromObject(job))).To(Succeed())

			Expect(fetch(ctx, client.ObjectKeyFromObject(job)).Spec.Cancel).To(BeTrue())
			if want == "" {
				Expect(errOut.String()).To(BeEmpty())
				return
			}
			Expect(errOut.String()).To(HavePrefix("Warning: extractionjob " + ns + "/gitops is managed by " + want + "."))
			Expect(errOut.String()).To(ContainSubstring("will be reverted at the next sync unless it goes to git"))
			Expect(out.String()).To(ContainSubstring("cancel requested"))
		},
		Entry("a Flux Kustomization", "",
			map[string]string{fluxKustomizationNameLabel: "extraction", fluxKustomizationNamespaceLabel: "flux-system"}, nil,
			"Flux (Kustomization flux-system/extraction)"),
		Entry("a Flux HelmRelease", "",
			map[string]string{fluxHelmReleaseNameLabel: "jobs", fluxHelmReleaseNamespaceLabel: "apps"}, nil,
			"Flux (HelmRelease apps/jobs)"),
		Entry("an Argo CD Application tracking by annotation", "",
			nil, map[string]string{argoCDTrackingIDAnnotation: "drawings:extraction.pybase.io/ExtractionJob:x/gitops"},
			"Argo CD (Application drawings)"),
		Entry("an Argo CD Application tracking by label, applied by argocd-application-controller", "argocd-application-controller",
			map[string]string{argoCDInstanceLabel: "drawings"}, nil,
			"Argo CD (Application drawings)"),
		Entry("an Argo CD Application tracking by label, applied by argocd-controller", "argocd-controller",
			map[string]string{argoCDInstanceLabel: "drawings"}, nil,
			"Argo CD (Application drawings)"),
		Entry("no tool: the instance label alone, as Helm sets it", "helm",
			map[string]string{argoCDInstanceLabel: "drawings"}, nil,
			""),
	)
})
