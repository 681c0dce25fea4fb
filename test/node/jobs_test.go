//go:build node

package node

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pybase/extraction-operator/api/podcontract"
	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
	"github.com/pybase/extraction-operator/test/harness"
	"github.com/pybase/extraction-operator/test/harness/builders"
	"github.com/pybase/extraction-operator/test/harness/sim"
)

const (
	jobsNamespace = "node-jobs"
	// crashLine is what the test extractor logs when TESTEXTRACTOR_CRASH=1
	// (test/images/testextractor).
	crashLine = "testextractor crashed on purpose (TESTEXTRACTOR_CRASH=1)"
	// longMessageEnd ends the test extractor's long message
	// (TESTEXTRACTOR_FAIL_MESSAGE_BYTES), so a test can tell it was cut.
	longMessageEnd = "END-OF-THE-LONG-MESSAGE"
	// kubeletMessageBytes is as much of one container's termination message
	// as the kubelet keeps: its end.
	kubeletMessageBytes = 4096
	// retryAfter is what the throttled source asks for: far longer than the
	// job's backoff, so a retry that comes this late waited for it.
	retryAfter = 8 * time.Second
	// insideMarker is what the node's own server answers: no job's status
	// may carry it.
	insideMarker = "node-local-answer-7f3c9e21"
)

// fastRetries retry after 1 s, 2 s, 4 s: long enough to tell, short enough
// for a test.
func fastRetries(maxRetries, maxDisruptions int32) builders.JobOption {
	return builders.WithRetryPolicy(maxRetries, maxDisruptions, ejv1.Backoff{
		Base: metav1.Duration{Duration: time.Second}, Multiplier: 2,
		Max: metav1.Duration{Duration: time.Minute}, JitterPercent: ptr.To[int32](0),
	})
}

func withAttemptTimeout(d time.Duration) builders.JobOption {
	return func(job *ejv1.ExtractionJob) { job.Spec.AttemptTimeout = &metav1.Duration{Duration: d} }
}

// testExtractorClass runs the test-only image with the given environment.
func testExtractorClass(name string, memory string, env ...ejv1.EnvVar) *ejv1.ExtractorClass {
	class := builders.ExtractorClass(name, testExtractorImage)
	class.Spec.ImagePullPolicy = corev1.PullNever
	class.Spec.Env = env
	if memory != "" {
		limit := resource.MustParse(memory)
		class.Spec.Resources = &ejv1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceMemory: limit},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: limit},
		}
	}
	return class
}

func getJob(name string) (*ejv1.ExtractionJob, error) {
	job := &ejv1.ExtractionJob{}
	err := k8s.Get(context.Background(), client.ObjectKey{Namespace: jobsNamespace, Name: name}, job)
	return job, err
}

// finished waits for the job to reach a final phase and returns it.
func finished(name string) *ejv1.ExtractionJob {
	GinkgoHelper()
	var job *ejv1.ExtractionJob
	Eventually(func(g Gomega) {
		var err error
		job, err = getJob(name)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(job.Status.Phase).To(BeElementOf(ejv1.PhaseSucceeded, ejv1.PhaseFailed, ejv1.PhaseCancelled),
			"job %s: %s", name, job.Status.Message)
	}).Should(Succeed())
	return job
}

// runningContainer waits for the job's current attempt's container to run
// and returns its Pod and the container's runtime ID.
func runningContainer(name string) (*corev1.Pod, string) {
	GinkgoHelper()
	pod := &corev1.Pod{}
	Eventually(func(g Gomega) {
		job, err := getJob(name)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(job.Status.PodName).NotTo(BeEmpty())
		g.Expect(k8s.Get(context.Background(), client.ObjectKey{Namespace: jobsNamespace, Name: job.Status.PodName}, pod)).To(Succeed())
		g.Expect(pod.Status.ContainerStatuses).To(HaveLen(1))
		g.Expect(pod.Status.ContainerStatuses[0].State.Running).NotTo(BeNil(), "the extractor is not running yet")
	}).Should(Succeed())
	id := pod.Status.ContainerStatuses[0].ContainerID
	return pod, strings.TrimPrefix(id, "containerd://")
}

// runningOnNode lists the IDs of the containers the runtime runs (crictl
// ps), whatever the API server says.
func runningOnNode() []string {
	GinkgoHelper()
	out, err := harness.Run(nodeCommand("crictl", "ps", "-q"))
	Expect(err).NotTo(HaveOccurred())
	return strings.Fields(out)
}

func attemptErrorTypes(job *ejv1.ExtractionJob) []string {
	types := make([]string, len(job.Status.Attempts))
	for i, a := range job.Status.Attempts {
		types[i] = a.ErrorType
	}
	return types
}

func fixture(name string) string {
	return filepath.Join(root, "cmd", "extractor", "testdata", "pdf", name)
}

// One ordered container: the operator's Pod is killed while these jobs run,
// and the node comes down and up again only after all of them. A failure
// does not skip the rest.
var _ = Describe("A real node", Ordered, ContinueOnFailure, func() {
	// The URLs the jobs fetch, set up in BeforeAll.
	var threePages, truncated, flaky, throttled, slowOnce, hanging, disrupted string
	// URLs inside the cluster and on the node, which the extractor refuses.
	var toClusterIP, toTheNode string

	BeforeAll(func() {
		ctx := context.Background()
		Expect(k8s.Create(ctx, builders.Namespace(jobsNamespace, builders.RestrictedLabels))).To(Succeed())
		Eventually(func() error {
			return k8s.Get(ctx, client.ObjectKey{Namespace: jobsNamespace, Name: "default"}, &corev1.ServiceAccount{})
		}).Should(Succeed())

		By("serving real PDFs, made by Ghostscript, and sources that fail on request")
		pdf := fixture("ghostscript-3-pages.pdf")
		info, err := os.Stat(pdf)
		Expect(err).NotTo(HaveOccurred())
		serve := func(path string, cut int, answers ...answer) string {
			url, err := files.serveFile(path, pdf, cut, answers...)
			Expect(err).NotTo(HaveOccurred())
			return url
		}
		threePages = serve("/three-pages.pdf", 0)
		truncated = serve("/truncated.pdf", int(info.Size()/2))
		flaky = serve("/flaky.pdf", 0, answer{status: http.StatusServiceUnavailable}, answer{status: http.StatusServiceUnavailable})
		throttled = serve("/throttled.pdf", 0, answer{status: http.StatusTooManyRequests, retryAfter: retryAfter})
		slowOnce = serve("/slow-once.pdf", 0, answer{hang: true})
		disrupted = serve("/disrupted.pdf", 0, answer{hang: true})
		hanging = serve("/hanging.pdf", 0, answer{hang: true}, answer{hang: true}, answer{hang: true})

		By("creating the classes: the test extractor under a small memory limit, crashing, and an image that is not there")
		oom := testExtractorClass("node-oom", "32Mi", ejv1.EnvVar{Name: "TESTEXTRACTOR_ALLOCATE_MIB", Value: "40"})
		oom.Spec.OnOOMKilled = &ejv1.OnOOMKilled{MemoryFactor: 2, MaxMemory: resource.MustParse("128Mi")}
		crash := testExtractorClass("node-crash", "", ejv1.EnvVar{Name: "TESTEXTRACTOR_CRASH", Value: "1"})
		longMessage := testExtractorClass("node-long-message", "", ejv1.EnvVar{Name: "TESTEXTRACTOR_FAIL_MESSAGE_BYTES", Value: "10000"})
		missing := builders.ExtractorClass("node-missing-image", "ghcr.io/pybase/extraction-extractor:v0.0.0-not-imported")
		missing.Spec.ImagePullPolicy = corev1.PullNever
		for _, class := range []*ejv1.ExtractorClass{oom, crash, longMessage, missing} {
			Expect(k8s.Create(ctx, class)).To(Succeed())
			DeferCleanup(func() { _ = k8s.Delete(context.Background(), class) })
		}

		By("serving a marker on the node, and a class that allows no internal address")
		markerFile := filepath.Join(GinkgoT().TempDir(), "inside.pdf")
		Expect(os.WriteFile(markerFile, []byte(insideMarker), 0o644)).To(Succeed())
		toTheNode, err = files.serveFile("/inside.pdf", markerFile, 0)
		Expect(err).NotTo(HaveOccurred())
		kubernetesService := &corev1.Service{}
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: "default", Name: "kubernetes"}, kubernetesService)).To(Succeed())
		toClusterIP = "https://" + kubernetesService.Spec.ClusterIP + "/api/v1/namespaces/kube-system/secrets"
		noAllowList := builders.ExtractorClass("node-no-allow-list", extractorImage)
		noAllowList.Spec.ImagePullPolicy = corev1.PullNever
		Expect(k8s.Create(ctx, noAllowList)).To(Succeed())
		DeferCleanup(func() { _ = k8s.Delete(context.Background(), noAllowList) })

		By("creating one job per case, all at once")
		job := func(name, url string, opts ...builders.JobOption) *ejv1.ExtractionJob {
			return builders.ExtractionJob(jobsNamespace, name, sim.Plan{}, append([]builders.JobOption{builders.WithSource(url)}, opts...)...)
		}
		for _, j := range []*ejv1.ExtractionJob{
			job("real-pdf", threePages),
			job("truncated-pdf", truncated, fastRetries(3, 3)),
			job("flaky", flaky, fastRetries(3, 3)),
			job("throttled", throttled, fastRetries(3, 3)),
			job("oom-killed", threePages, builders.WithClass("node-oom"), fastRetries(3, 3)),
			// A normal attempt takes up to 5 s here when the machine is busy.
			job("slow", slowOnce, withAttemptTimeout(15*time.Second), fastRetries(3, 3)),
			job("missing-image", threePages, builders.WithClass("node-missing-image"), fastRetries(0, 3)),
			job("crash", threePages, builders.WithClass("node-crash"), fastRetries(0, 3)),
			job("long-message", threePages, builders.WithClass("node-long-message"), fastRetries(0, 3)),
			// No retry to spend: a deleted Pod that counted as one would fail the job.
			job("disrupted", disrupted, fastRetries(0, 3)),
			job("cancelled", hanging, fastRetries(3, 3)),
			// A job author's URLs that lead inside: refused, not retried.
			job("to-cluster-ip", toClusterIP, builders.WithClass("node-no-allow-list"), fastRetries(3, 3)),
			job("to-the-node", toTheNode, builders.WithClass("node-no-allow-list"), fastRetries(3, 3)),
		} {
			Expect(k8s.Create(ctx, j)).To(Succeed())
		}
	})

	It("runs the operator from its image as config/default's Deployment, with probes and leader election", func() {
		d, err := deployment()
		Expect(err).NotTo(HaveOccurred())
		Expect(d.Spec.Template.Spec.Containers[0].Image).To(Equal("ghcr.io/pybase/extraction-operator:v0.1.0"))
		Expect(d.Status.AvailableReplicas).To(BeEquivalentTo(1), "the readiness probe never passed")
		Eventually(func(g Gomega) {
			pods, err := operatorPods()
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(pods).To(HaveLen(1))
			g.Expect(leaseHolder()).To(HavePrefix(pods[0]))
		}).Should(Succeed())
	})

	It("keeps the jobs right when the operator's Pod is killed mid-run", func() {
		By("waiting until the attempts whose sources hang run")
		for _, name := range []string{"disrupted", "cancelled"} {
			runningContainer(name)
		}
		before, err := operatorPods()
		Expect(err).NotTo(HaveOccurred())
		Expect(before).To(HaveLen(1))

		By("killing the operator's Pod " + before[0])
		kubectlOK("-n", operatorNamespace, "delete", "pod", before[0], "--grace-period=0", "--force")
		Eventually(func(g Gomega) {
			after, err := operatorPods()
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(after).To(HaveLen(1))
			g.Expect(after[0]).NotTo(Equal(before[0]))
			g.Expect(leaseHolder()).To(HavePrefix(after[0]), "the new Pod does not lead yet")
		}).Should(Succeed())
	})

	It("extracts a real PDF, with its page count in status.result, as UID 65532 on a read-only root", func() {
		job := finished("real-pdf")
		Expect(job.Status.Phase).To(Equal(ejv1.PhaseSucceeded), job.Status.Message)
		var result struct{ Pages int }
		Expect(json.Unmarshal(job.Status.Result.Raw, &result)).To(Succeed())
		Expect(result.Pages).To(Equal(3))

		By("the kubelet reporting the user the extractor ran as")
		pod := &corev1.Pod{}
		Expect(k8s.Get(context.Background(), client.ObjectKey{Namespace: jobsNamespace, Name: job.Status.PodName}, pod)).To(Succeed())
		Expect(pod.Spec.Containers[0].SecurityContext.ReadOnlyRootFilesystem).To(HaveValue(BeTrue()))
		Expect(pod.Status.ContainerStatuses).To(HaveLen(1))
		Expect(pod.Status.ContainerStatuses[0].User).NotTo(BeNil())
		Expect(pod.Status.ContainerStatuses[0].User.Linux.UID).To(BeEquivalentTo(65532))
	})

	It("fails a truncated PDF at once as a permanent CorruptedFile", func() {
		job := finished("truncated-pdf")
		Expect(job.Status.Phase).To(Equal(ejv1.PhaseFailed))
		Expect(job.Status.Message).To(HavePrefix("Permanent error: CorruptedFile: "))
		Expect(job.Status.RetryCount).To(BeZero())
	})

	It("retries a source that answers 503 twice, and succeeds on the third attempt", func() {
		job := finished("flaky")
		Expect(job.Status.Phase).To(Equal(ejv1.PhaseSucceeded), job.Status.Message)
		Expect(job.Status.RetryCount).To(BeEquivalentTo(2))
		Expect(attemptErrorTypes(job)).To(Equal([]string{"ServiceUnavailable", "ServiceUnavailable", ""}))
		Expect(files.received("/flaky.pdf")).To(HaveLen(3))
	})

	It("waits out a 429's Retry-After before the retry", func() {
		job := finished("throttled")
		Expect(job.Status.Phase).To(Equal(ejv1.PhaseSucceeded), job.Status.Message)
		Expect(attemptErrorTypes(job)).To(Equal([]string{"RateLimitExceeded", ""}))
		requests := files.received("/throttled.pdf")
		Expect(requests).To(HaveLen(2))
		Expect(requests[1].at.Sub(requests[0].at)).To(BeNumerically(">=", retryAfter),
			"the retry came before the Retry-After the source asked for (the backoff alone is 1 s)")
	})

	It("retries a real OOMKilled attempt with double the memory, and succeeds", func() {
		job := finished("oom-killed")
		Expect(job.Status.Phase).To(Equal(ejv1.PhaseSucceeded), job.Status.Message)
		Expect(job.Status.OOMKilledCount).To(BeEquivalentTo(1))
		Expect(attemptErrorTypes(job)).To(Equal([]string{ejv1.ErrorTypeOOMKilled, ""}))
		Expect(job.Status.Attempts[0].Memory.String()).To(Equal("32Mi"))
		Expect(job.Status.Attempts[1].Memory.String()).To(Equal("64Mi"))
	})

	It("retries an attempt the kubelet stopped at attemptTimeout as a TimeoutError", func() {
		job := finished("slow")
		Expect(job.Status.Phase).To(Equal(ejv1.PhaseSucceeded), job.Status.Message)
		Expect(attemptErrorTypes(job)).To(Equal([]string{ejv1.ErrorTypeTimeout, ""}))
		Expect(job.Status.RetryCount).To(BeEquivalentTo(1))
	})

	It("fails clearly when the class's image is not on the node and may not be pulled", func() {
		job := finished("missing-image")
		Expect(job.Status.Phase).To(Equal(ejv1.PhaseFailed))
		Expect(job.Status.LastFailure).NotTo(BeNil())
		Expect(job.Status.LastFailure.ErrorType).To(Equal(ejv1.ErrorTypeImagePull))
		Expect(job.Status.LastFailure.Reason).To(Equal("ErrImageNeverPull"))
		Expect(job.Status.LastFailure.Message).To(ContainSubstring("ghcr.io/pybase/extraction-extractor:v0.0.0-not-imported"))
		Expect(job.Status.Message).To(ContainSubstring(ejv1.ErrorTypeImagePull))
	})

	It("takes the message of a crash without a termination message from the extractor's log", func() {
		job := finished("crash")
		Expect(job.Status.Phase).To(Equal(ejv1.PhaseFailed))
		Expect(job.Status.LastFailure).NotTo(BeNil())
		Expect(job.Status.LastFailure.ExitCode).To(HaveValue(BeEquivalentTo(70)))
		Expect(job.Status.LastFailure.Message).To(ContainSubstring(crashLine))
	})

	// The kubelet keeps the end of a long termination message, not its
	// start (it reads the file's last 4 KiB), so the "ErrorType: message"
	// line is lost and the operator must fall back on the exit code.
	It("keeps the kubelet's last 4 KiB of a 10,000-byte termination message, and reads the error type from the exit code", func() {
		job := finished("long-message")
		Expect(job.Status.Phase).To(Equal(ejv1.PhaseFailed))
		Expect(job.Status.LastFailure).NotTo(BeNil())
		Expect(job.Status.LastFailure.ErrorType).To(Equal(podcontract.CorruptedFile))
		Expect(job.Status.LastFailure.ExitCode).To(HaveValue(BeEquivalentTo(podcontract.ExitCode(podcontract.CorruptedFile))))
		Expect(len(job.Status.LastFailure.Message)).To(BeNumerically("<=", podcontract.MaxMessageBytes))

		By("the kubelet reporting the message's end, cut to 4 KiB")
		pod := &corev1.Pod{}
		Expect(k8s.Get(context.Background(), client.ObjectKey{Namespace: jobsNamespace, Name: job.Status.PodName}, pod)).To(Succeed())
		Expect(pod.Status.ContainerStatuses).To(HaveLen(1))
		terminated := pod.Status.ContainerStatuses[0].State.Terminated
		Expect(terminated).NotTo(BeNil())
		Expect(terminated.Message).To(HaveLen(kubeletMessageBytes))
		Expect(terminated.Message).To(HaveSuffix(longMessageEnd))
		Expect(terminated.Message).NotTo(ContainSubstring(podcontract.CorruptedFile+":"), "the kubelet kept the message's start")
	})

	It("retries an attempt whose running Pod was deleted as a disruption, without spending a retry", func() {
		pod, _ := runningContainer("disrupted")
		Expect(k8s.Delete(context.Background(), pod)).To(Succeed())
		job := finished("disrupted")
		Expect(job.Status.Phase).To(Equal(ejv1.PhaseSucceeded), job.Status.Message)
		Expect(job.Status.RetryCount).To(BeZero())
		Expect(job.Status.DisruptionCount).To(BeEquivalentTo(1))
		Expect(attemptErrorTypes(job)).To(Equal([]string{ejv1.ErrorTypePodDeleted, ""}))
	})

	It("stops the container of a cancelled job on the node", func() {
		pod, container := runningContainer("cancelled")
		Expect(runningOnNode()).To(ContainElement(container))
		job, err := getJob("cancelled")
		Expect(err).NotTo(HaveOccurred())
		patch := client.MergeFrom(job.DeepCopy())
		job.Spec.Cancel = true
		Expect(k8s.Patch(context.Background(), job, patch)).To(Succeed())
		Expect(finished("cancelled").Status.Phase).To(Equal(ejv1.PhaseCancelled))
		Eventually(runningOnNode, time.Minute).ShouldNot(ContainElement(container), "the cancelled job's container still runs on the node")
		Eventually(func() error {
			return k8s.Get(context.Background(), client.ObjectKeyFromObject(pod), &corev1.Pod{})
		}, time.Minute).Should(MatchError(ContainSubstring("not found")))
	})

	It("refuses a URL at the API server's ClusterIP or at the node itself, and quotes nothing from there", func() {
		for _, name := range []string{"to-cluster-ip", "to-the-node"} {
			job := finished(name)
			Expect(job.Status.Phase).To(Equal(ejv1.PhaseFailed), name)
			Expect(job.Status.LastFailure).NotTo(BeNil(), name)
			Expect(job.Status.LastFailure.ErrorType).To(Equal(podcontract.DestinationNotAllowed), name)
			Expect(job.Status.LastFailure.Message).To(ContainSubstring("private"), "%s: the message names the address class", name)
			Expect(job.Status.RetryCount).To(BeZero(), "%s: a refusal is permanent", name)
			status, err := json.Marshal(job.Status)
			Expect(err).NotTo(HaveOccurred())
			// The API server would answer a Status object; the node's server the marker.
			for _, answer := range []string{insideMarker, `"kind"`, "Unauthorized", "Forbidden"} {
				Expect(string(status)).NotTo(ContainSubstring(answer), "%s: status carries what the address answered", name)
			}
		}
		Expect(files.received("/inside.pdf")).To(BeEmpty(), "the extractor connected to the node's server")
	})

	metricsSpecs()
	bringDownSpecs()
})
