package main

import (
	"bytes"
	"context"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
)

var _ = Describe("kubectl extraction, run as a user with a kubeconfig", func() {
	var (
		ctx         context.Context
		ns          string
		job, active *ejv1.ExtractionJob // a Failed job to retry, a Running one to cancel
	)
	BeforeEach(func() {
		ctx = context.Background()
		ns = newNamespace(ctx)
		job = jobIn(ctx, ns, "drawing", ejv1.ExtractionJobStatus{
			Phase: ejv1.PhaseFailed, Retries: "3/3", Message: "Max retries (3) exceeded. Last error: ConnectionError: refused",
			LastFailure: failure("ConnectionError", ejv1.ClassRetryable, 1, "refused"),
		})
		active = jobIn(ctx, ns, "active", ejv1.ExtractionJobStatus{Phase: ejv1.PhaseRunning, Retries: "0/3"})
	})

	It("retries, cancels and reports with the admin's kubeconfig and -n", func() {
		clk := newClock()

		out, _, err := cli(clk, "--kubeconfig", adminKubeconfig, "-n", ns, "status", "drawing")
		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(ContainSubstring("Phase:       Failed\n"))

		out, _, err = cli(clk, "--kubeconfig", adminKubeconfig, "-n", ns, "retry", "drawing")
		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(ContainSubstring("retry requested (extraction.pybase.io/retry-requested-at=2031-05-06T07:08:09Z)"))
		Expect(fetch(ctx, client.ObjectKeyFromObject(job)).Annotations).To(HaveKeyWithValue(ejv1.RetryRequestAnnotation, "2031-05-06T07:08:09Z"))

		// The operator starts the job again.
		running := fetch(ctx, client.ObjectKeyFromObject(job))
		running.Status = ejv1.ExtractionJobStatus{Phase: ejv1.PhaseRunning, LastHandledRetryRequest: "2031-05-06T07:08:09Z"}
		Expect(admin.Status().Update(ctx, running)).To(Succeed())

		out, _, err = cli(clk, "--kubeconfig", adminKubeconfig, "--namespace", ns, "cancel", "drawing")
		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(ContainSubstring("cancel requested (spec.cancel=true); it was Running"))
		Expect(fetch(ctx, client.ObjectKeyFromObject(job)).Spec.Cancel).To(BeTrue())

		out, _, err = cli(clk, "--kubeconfig", adminKubeconfig, "-n", ns, "summary", "--chunk-size", "1")
		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(ContainSubstring("Running     2\n"))
	})

	It("refuses a retry and a cancel from a user who may only read, with the API server's Forbidden error", func() {
		for verb, name := range map[string]string{"retry": job.Name, "cancel": active.Name} {
			_, _, err := cli(newClock(), "--kubeconfig", readerKubeconfig, "-n", ns, verb, name)

			Expect(err).To(HaveOccurred(), verb)
			Expect(err.Error()).To(ContainSubstring(
				`extractionjobs.extraction.pybase.io "`+name+`" is forbidden: User "reader" cannot patch resource "extractionjobs" in API group "extraction.pybase.io" in the namespace "`+ns+`"`), verb)
			Expect(err.Error()).To(ContainSubstring("kubectl auth can-i patch extractionjobs.extraction.pybase.io -n "+ns), verb)
		}
		Expect(fetch(ctx, client.ObjectKeyFromObject(job)).Annotations).NotTo(HaveKey(ejv1.RetryRequestAnnotation))
		Expect(fetch(ctx, client.ObjectKeyFromObject(active)).Spec.Cancel).To(BeFalse())
	})

	It("lets a user who may only read see the status and the summary", func() {
		out, _, err := cli(newClock(), "--kubeconfig", readerKubeconfig, "-n", ns, "status", "drawing")
		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(ContainSubstring("Message:     Max retries (3) exceeded. Last error: ConnectionError: refused\n"))

		out, _, err = cli(newClock(), "--kubeconfig", readerKubeconfig, "summary", "-A")
		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(MatchRegexp(ns + `\s+2\s`))
	})

	It("acts as an impersonated user with --as, whom RBAC refuses a cancel", func() {
		_, _, err := cli(newClock(), "--kubeconfig", adminKubeconfig, "--as", readerName, "-n", ns, "cancel", "active")

		Expect(err).To(MatchError(ContainSubstring(`User "reader" cannot patch resource "extractionjobs"`)))
		Expect(fetch(ctx, client.ObjectKeyFromObject(active)).Spec.Cancel).To(BeFalse())
	})

	It("tells a user without any grant that RBAC refuses even the get", func() {
		_, _, err := cli(newClock(), "--kubeconfig", adminKubeconfig, "--as", "stranger", "-n", ns, "status", "drawing")

		Expect(err).To(MatchError(ContainSubstring(`User "stranger" cannot get resource "extractionjobs"`)))
		Expect(err).To(MatchError(ContainSubstring("kubectl auth can-i get extractionjobs.extraction.pybase.io -n " + ns)))

		_, _, err = cli(newClock(), "--kubeconfig", adminKubeconfig, "--as", "stranger", "summary", "-A")
		Expect(err).To(MatchError(ContainSubstring(`User "stranger" cannot list resource "extractionjobs"`)))
		Expect(err).To(MatchError(ContainSubstring("kubectl auth can-i list extractionjobs.extraction.pybase.io --all-namespaces")))
	})

	It("refuses a retry for an impersonated reader through the command logic too", func() {
		cfg := rest.CopyConfig(adminCfg)
		cfg.Impersonate = rest.ImpersonationConfig{UserName: readerName}
		c, err := NewClient(cfg)
		Expect(err).NotTo(HaveOccurred())

		err = Retry(ctx, c, &bytes.Buffer{}, &bytes.Buffer{}, client.ObjectKeyFromObject(job), testNow)

		Expect(err).To(MatchError(ContainSubstring("is forbidden")))
		Expect(err).To(MatchError(ContainSubstring("The API server refused to let you patch ExtractionJobs")))
	})

	It("prints usage for a missing name", func() {
		_, _, err := cli(newClock(), "--kubeconfig", adminKubeconfig, "retry")

		Expect(err).To(MatchError("accepts 1 arg(s), received 0"))
	})
})
