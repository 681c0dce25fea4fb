//go:build e2e

package e2e

import (
	"fmt"
	"maps"
	"os/exec"
	"slices"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
	"github.com/pybase/extraction-operator/test/harness"
	"github.com/pybase/extraction-operator/test/harness/sim"
)

// applyYAML applies a manifest with kubectl, so these specs read like what a
// user does and do not depend on the Go types.
func applyYAML(namespace, manifest string) {
	GinkgoHelper()
	cmd := exec.Command(kubectlBinary, "--kubeconfig", kubeconfig, "apply", "-n", namespace, "-f", "-")
	cmd.Stdin = strings.NewReader(manifest)
	out, err := harness.Run(cmd)
	Expect(err).NotTo(HaveOccurred(), out)
}

// simulatedJob is an ExtractionJob whose Pods play the plan (see
// config/kwok/README.md).
func simulatedJob(name, retryPolicy string, plan sim.Plan) string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: extraction.pybase.io/v1alpha1\nkind: ExtractionJob\nmetadata:\n  name: %s\n", name)
	fmt.Fprintf(&b, "spec:\n  format: pdf\n  source:\n    url: s3://e2e/%s.pdf\n", name)
	if retryPolicy != "" {
		fmt.Fprintf(&b, "  retryPolicy:\n%s", retryPolicy)
	}
	b.WriteString("  podTemplate:\n    metadata:\n      annotations:\n")
	annotations := plan.Annotations()
	for _, k := range slices.Sorted(maps.Keys(annotations)) {
		fmt.Fprintf(&b, "        %s: %q\n", k, annotations[k])
	}
	return b.String()
}

func podCount(namespace string, uid types.UID) func() (int, error) {
	return func() (int, error) {
		pods, err := jobPods(namespace, string(uid))
		return len(pods), err
	}
}

var _ = Describe("Deleting a job", Ordered, func() {
	const ns = "e2e-lifecycle"

	BeforeAll(func() { createNamespace(ns) })
	AfterAll(func() { _, _ = kubectl("delete", "namespace", ns, "--wait=false") })

	It("deletes its running Pod through the garbage collector", func() {
		applyYAML(ns, simulatedJob("long-running", "", sim.Plan{Attempts: []sim.Token{sim.Hold}}))
		Eventually(phaseOf(ns, "long-running")).Should(Equal(ejv1.PhaseRunning))
		job, err := getJob(ns, "long-running")
		Expect(err).NotTo(HaveOccurred())
		Expect(podCount(ns, job.UID)()).To(Equal(1))

		kubectlOK("delete", "-n", ns, "extractionjob", "long-running", "--timeout=1m")
		Eventually(podCount(ns, job.UID), time.Minute).Should(BeZero(), "the deleted job's Pod is still there")
	})

	It("while its retry is pending leaves no Pod behind", func() {
		applyYAML(ns, simulatedJob("retry-pending", `    backoff:
      base: 8s
      multiplier: 1
      jitterPercent: 0
`, sim.Plan{Outcome: "fail", RunSeconds: []int{1}, Message: "ConnectionError: the bucket did not answer"}))
		Eventually(phaseOf(ns, "retry-pending")).Should(Equal(ejv1.PhaseRetrying))
		job, err := getJob(ns, "retry-pending")
		Expect(err).NotTo(HaveOccurred())
		Expect(job.Status.NextRetryAt).NotTo(BeNil())
		due := job.Status.NextRetryAt.Time
		Expect(time.Until(due)).To(BeNumerically(">", 2*time.Second), "too little of the backoff is left to test with")

		By("showing the next retry's time in kubectl get")
		rows := parseTable(kubectlOK("get", "ej", "-n", ns, "retry-pending"))
		Expect(rows).To(HaveLen(2))
		Expect(rows[1][1:6]).To(HaveExactElements("Retrying", "pdf", "1/3", due.UTC().Format("2006-01-02T15:04:05.000000Z07:00"), "ConnectionError"))

		kubectlOK("delete", "-n", ns, "extractionjob", "retry-pending", "--timeout=1m")
		Eventually(podCount(ns, job.UID), time.Minute).Should(BeZero(), "the failed attempt's Pod is still there")
		Consistently(podCount(ns, job.UID), time.Until(due)+5*time.Second).Should(BeZero(),
			"a Pod appeared for the deleted job when its retry fell due")
	})

	It("and creating it again under the same name never meets the old job's Pods", func() {
		applyYAML(ns, simulatedJob("same-name", "", sim.Plan{Attempts: []sim.Token{sim.Hold}}))
		Eventually(phaseOf(ns, "same-name")).Should(Equal(ejv1.PhaseRunning))
		old, err := getJob(ns, "same-name")
		Expect(err).NotTo(HaveOccurred())
		oldPod := old.Status.PodName

		// As a GitOps tool does: delete, and create again at once.
		kubectlOK("delete", "-n", ns, "extractionjob", "same-name", "--wait=false")
		Eventually(func() bool {
			_, err := getJob(ns, "same-name")
			return apierrors.IsNotFound(err)
		}).Should(BeTrue(), "the deleted job is still there")
		applyYAML(ns, simulatedJob("same-name", "", sim.Plan{RunSeconds: []int{1}, Result: `{"again":true}`}))
		kubectlOK("wait", "-n", ns, "--for=condition=Complete", "extractionjob/same-name", "--timeout=2m")
		job, err := getJob(ns, "same-name")
		Expect(err).NotTo(HaveOccurred())
		Expect(job.UID).NotTo(Equal(old.UID))
		Expect(job.Status.PodName).NotTo(Equal(oldPod))
		Expect(string(job.Status.Result.Raw)).To(MatchJSON(`{"again":true}`))
		Eventually(podCount(ns, old.UID), time.Minute).Should(BeZero())
	})
})

var _ = Describe("An attempt whose container never starts", Ordered, func() {
	const ns = "e2e-waiting"

	BeforeAll(func() { createNamespace(ns) })
	AfterAll(func() { _, _ = kubectl("delete", "namespace", ns, "--wait=false") })

	It("fails at once for an invalid image name, permanently", func() {
		applyYAML(ns, simulatedJob("invalid-image", "", sim.Plan{
			WaitingReason: "InvalidImageName", WaitingMessage: `couldn't parse image name "Extractor:Latest"`,
		}))
		kubectlOK("wait", "-n", ns, "--for=condition=Failed", "extractionjob/invalid-image", "--timeout=2m")
		job, err := getJob(ns, "invalid-image")
		Expect(err).NotTo(HaveOccurred())
		Expect(job.Status.Message).To(HavePrefix("Permanent error: " + ejv1.ErrorTypeInvalidImageName + ": "))
		Expect(job.Status.RetryCount).To(BeZero())
	})

	It("fails as retryable after the image pull grace period, and runs out of retries", func() {
		// The suite runs the operator with --image-pull-grace-period=3s.
		applyYAML(ns, simulatedJob("pull-error", `    maxRetries: 1
    backoff:
      base: 1s
`, sim.Plan{WaitingReason: "ErrImagePull", WaitingMessage: "registry.example.com: connection refused"}))
		kubectlOK("wait", "-n", ns, "--for=condition=Failed", "extractionjob/pull-error", "--timeout=2m")
		job, err := getJob(ns, "pull-error")
		Expect(err).NotTo(HaveOccurred())
		Expect(job.Status.Message).To(HavePrefix("Max retries (1) exceeded. Last error: " + ejv1.ErrorTypeImagePull + ": "))
		Expect(job.Status.Attempt).To(Equal(int32(2)))
		Eventually(podCount(ns, job.UID), time.Minute).Should(BeZero(), "the stuck attempts' Pods are still there")
	})
})
