package controllers

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	lua "github.com/yuin/gopher-lua"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	kstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
)

// scrape reads the running operator's /metrics endpoint.
func scrape(g Gomega) map[string]*dto.MetricFamily {
	response, err := http.Get("http://" + metricsAddress + "/metrics")
	g.Expect(err).NotTo(HaveOccurred())
	defer response.Body.Close()
	g.Expect(response.StatusCode).To(Equal(http.StatusOK))
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(response.Body)
	g.Expect(err).NotTo(HaveOccurred())
	return families
}

// sample is the value of the series with these labels: a counter's or
// gauge's value, or a histogram's count.
func sample(families map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	family, ok := families[name]
	if !ok {
		return 0
	}
	for _, m := range family.Metric {
		matched := 0
		for _, pair := range m.Label {
			if want, ok := labels[pair.GetName()]; ok && want == pair.GetValue() {
				matched++
			}
		}
		if matched != len(labels) {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return 0
}

// argoCDHealth runs config/argocd/health.lua on an object as Argo CD does:
// the object is the global obj, and the script returns the health.
func argoCDHealth(g Gomega, object map[string]any) (status, message string) {
	script, err := os.ReadFile(filepath.Join("..", "config", "argocd", "health.lua"))
	g.Expect(err).NotTo(HaveOccurred())
	state := lua.NewState()
	defer state.Close()
	state.SetGlobal("obj", toLua(state, object))
	g.Expect(state.DoString(string(script))).To(Succeed())
	health, ok := state.Get(-1).(*lua.LTable)
	g.Expect(ok).To(BeTrue(), "the script returns a table")
	return health.RawGetString("status").String(), health.RawGetString("message").String()
}

func toLua(state *lua.LState, value any) lua.LValue {
	switch v := value.(type) {
	case map[string]any:
		table := state.NewTable()
		for key, item := range v {
			table.RawSetString(key, toLua(state, item))
		}
		return table
	case []any:
		table := state.NewTable()
		for _, item := range v {
			table.Append(toLua(state, item))
		}
		return table
	case string:
		return lua.LString(v)
	case bool:
		return lua.LBool(v)
	case int64:
		return lua.LNumber(v)
	case float64:
		return lua.LNumber(v)
	}
	return lua.LNil
}

var _ = Describe("Monitoring ExtractionJobs", func() {
	var (
		ctx       context.Context
		namespace string
	)
	BeforeEach(func() {
		ctx = context.Background()
		namespace = newNamespace(ctx)
	})

	It("serves metrics that count attempts, retries, lateness and phases", func() {
		// Only this spec uses format step, so its series move only here.
		step := map[string]string{"format": "step"}
		before := scrape(Default)

		job := newJob(namespace, "metrics")
		job.Spec.Format = ejv1.FormatSTEP
		Expect(k8sClient.Create(ctx, job)).To(Succeed())
		setPodFailed(ctx, waitForAttemptPod(ctx, job, 1), 1, "ConnectionError: refused")
		setPodFailed(ctx, waitForAttemptPod(ctx, job, 2), 1, "NotInTheTable: invented by the extractor")
		setPodSucceeded(ctx, waitForAttemptPod(ctx, job, 3), "")
		waitForPhase(ctx, job, ejv1.PhaseSucceeded)

		Eventually(func(g Gomega) {
			after := scrape(g)
			delta := func(name string, labels map[string]string) float64 {
				return sample(after, name, labels) - sample(before, name, labels)
			}
			g.Expect(delta("extractionjob_attempts_finished_total", map[string]string{
				"format": "step", "outcome": "Failed", "class": "Retryable", "error_type": "ConnectionError"})).To(BeEquivalentTo(1))
			g.Expect(delta("extractionjob_attempts_finished_total", map[string]string{
				"format": "step", "outcome": "Failed", "error_type": "Other"})).To(BeEquivalentTo(1))
			g.Expect(delta("extractionjob_attempts_finished_total", map[string]string{
				"format": "step", "outcome": "Succeeded"})).To(BeEquivalentTo(1))
			g.Expect(delta("extractionjob_retries_scheduled_total", step)).To(BeEquivalentTo(2))
			g.Expect(delta("extractionjob_backoff_delay_seconds", step)).To(BeEquivalentTo(2))
			g.Expect(delta("extractionjob_attempt_duration_seconds", map[string]string{"format": "step", "outcome": "Failed"})).To(BeEquivalentTo(2))
			g.Expect(delta("extractionjob_retry_lateness_seconds", nil)).To(BeNumerically(">=", 2))
			g.Expect(sample(after, "extractionjob_jobs", map[string]string{"format": "step", "phase": "Succeeded"})).To(BeEquivalentTo(1))
		}).Should(Succeed())
	})

	It("counts cancels and manual retries", func() {
		before := scrape(Default)
		job := newJob(namespace, "counted")
		job.Spec.Cancel = true
		Expect(k8sClient.Create(ctx, job)).To(Succeed())
		waitForPhase(ctx, job, ejv1.PhaseCancelled)

		current := getJob(Default, ctx, job)
		patch := client.MergeFrom(current.DeepCopy())
		current.Spec.Cancel = false
		current.Annotations = map[string]string{ejv1.RetryRequestAnnotation: "again"}
		Expect(k8sClient.Patch(ctx, current, patch)).To(Succeed())
		waitForAttemptPod(ctx, job, 1)

		Eventually(func(g Gomega) {
			after := scrape(g)
			g.Expect(sample(after, "extractionjob_cancels_total", nil) - sample(before, "extractionjob_cancels_total", nil)).To(BeNumerically(">=", 1))
			g.Expect(sample(after, "extractionjob_manual_retries_total", nil) - sample(before, "extractionjob_manual_retries_total", nil)).To(BeNumerically(">=", 1))
		}).Should(Succeed())
	})

	It("lists jobs by phase and format through field selectors", func() {
		failed := newJob(namespace, "select-failed")
		running := newJob(namespace, "select-running")
		Expect(k8sClient.Create(ctx, failed)).To(Succeed())
		Expect(k8sClient.Create(ctx, running)).To(Succeed())
		setPodFailed(ctx, waitForAttemptPod(ctx, failed, 1), 1, "InvalidFileType: not a PDF")
		waitForPhase(ctx, failed, ejv1.PhaseFailed)
		setPodRunning(ctx, waitForAttemptPod(ctx, running, 1))
		waitForPhase(ctx, running, ejv1.PhaseRunning)

		list := &ejv1.ExtractionJobList{}
		Expect(k8sClient.List(ctx, list, client.InNamespace(namespace), client.MatchingFields{"status.phase": "Failed"})).To(Succeed())
		Expect(list.Items).To(HaveLen(1))
		Expect(list.Items[0].Name).To(Equal("select-failed"))
		Expect(k8sClient.List(ctx, list, client.InNamespace(namespace), client.MatchingFields{"spec.format": "pdf"})).To(Succeed())
		Expect(list.Items).To(HaveLen(2))
	})

	It("deletes a finished job after ttlSecondsAfterFinished", func() {
		job := newJob(namespace, "ttl")
		job.Spec.TTLSecondsAfterFinished = ptr.To[int32](2)
		Expect(k8sClient.Create(ctx, job)).To(Succeed())
		setPodSucceeded(ctx, waitForAttemptPod(ctx, job, 1), "")
		done := waitForPhase(ctx, job, ejv1.PhaseSucceeded)

		Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(job), &ejv1.ExtractionJob{}))
		}).WithTimeout(15 * time.Second).Should(BeTrue())
		Expect(time.Since(done.Status.CompletionTime.Time)).To(BeNumerically(">=", 2*time.Second))
	})

	It("keeps a finished job without a TTL", func() {
		job := newJob(namespace, "no-ttl")
		Expect(k8sClient.Create(ctx, job)).To(Succeed())
		setPodSucceeded(ctx, waitForAttemptPod(ctx, job, 1), "")
		waitForPhase(ctx, job, ejv1.PhaseSucceeded)
		Consistently(func() error {
			return k8sClient.Get(ctx, client.ObjectKeyFromObject(job), &ejv1.ExtractionJob{})
		}).WithTimeout(2 * time.Second).Should(Succeed())
	})

	It("reports kstatus and Argo CD health: in progress while running, current on success, failed on failure or cancel", func() {
		// computeStatus checks kstatus and the Argo CD health check on the same
		// object, and returns the kstatus.
		computeStatus := func(g Gomega, job *ejv1.ExtractionJob) kstatus.Status {
			content, err := runtime.DefaultUnstructuredConverter.ToUnstructured(getJob(g, ctx, job))
			g.Expect(err).NotTo(HaveOccurred())
			result, err := kstatus.Compute(&unstructured.Unstructured{Object: content})
			g.Expect(err).NotTo(HaveOccurred())
			argoStatus, message := argoCDHealth(g, content)
			g.Expect(argoStatus).To(Equal(map[kstatus.Status]string{
				kstatus.InProgressStatus: "Progressing", kstatus.CurrentStatus: "Healthy", kstatus.FailedStatus: "Degraded",
			}[result.Status]), "Argo CD health for kstatus %s", result.Status)
			g.Expect(message).NotTo(BeEmpty())
			return result.Status
		}
		succeeding := newJob(namespace, "kstatus-success")
		failing := newJob(namespace, "kstatus-failure")
		cancelled := newJob(namespace, "kstatus-cancel")
		cancelled.Spec.Cancel = true
		for _, job := range []*ejv1.ExtractionJob{succeeding, failing, cancelled} {
			Expect(k8sClient.Create(ctx, job)).To(Succeed())
		}

		pod := waitForAttemptPod(ctx, succeeding, 1)
		waitForPhase(ctx, succeeding, ejv1.PhasePending)
		Eventually(func(g Gomega) { g.Expect(computeStatus(g, succeeding)).To(Equal(kstatus.InProgressStatus)) }).Should(Succeed())
		setPodRunning(ctx, pod)
		waitForPhase(ctx, succeeding, ejv1.PhaseRunning)
		Eventually(func(g Gomega) { g.Expect(computeStatus(g, succeeding)).To(Equal(kstatus.InProgressStatus)) }).Should(Succeed())
		setPodSucceeded(ctx, pod, "")
		waitForPhase(ctx, succeeding, ejv1.PhaseSucceeded)
		Eventually(func(g Gomega) { g.Expect(computeStatus(g, succeeding)).To(Equal(kstatus.CurrentStatus)) }).Should(Succeed())

		setPodFailed(ctx, waitForAttemptPod(ctx, failing, 1), 1, "ConnectionError: once")
		waitForPhase(ctx, failing, ejv1.PhaseRetrying)
		Eventually(func(g Gomega) { g.Expect(computeStatus(g, failing)).To(Equal(kstatus.InProgressStatus)) }).Should(Succeed())
		setPodFailed(ctx, waitForAttemptPod(ctx, failing, 2), 1, "FileTooLarge: 3 GiB")
		waitForPhase(ctx, failing, ejv1.PhaseFailed)
		Eventually(func(g Gomega) { g.Expect(computeStatus(g, failing)).To(Equal(kstatus.FailedStatus)) }).Should(Succeed())

		waitForPhase(ctx, cancelled, ejv1.PhaseCancelled)
		Eventually(func(g Gomega) { g.Expect(computeStatus(g, cancelled)).To(Equal(kstatus.FailedStatus)) }).Should(Succeed())
	})

	It("never restarts or changes a finished job when the same manifest is applied again", func() {
		manifest := func() *unstructured.Unstructured {
			return &unstructured.Unstructured{Object: map[string]any{
				"apiVersion": ejv1.GroupVersion.String(), "kind": "ExtractionJob",
				"metadata": map[string]any{"name": "gitops", "namespace": namespace},
				"spec": map[string]any{
					"format": "pdf", "source": map[string]any{"url": "s3://b/gitops.pdf"},
					"retryPolicy": map[string]any{"backoff": map[string]any{"base": "1s"}},
				},
			}}
		}
		apply := func() {
			GinkgoHelper()
			Expect(k8sClient.Patch(ctx, manifest(), client.Apply, client.FieldOwner("gitops-tool"), client.ForceOwnership)).To(Succeed())
		}
		apply()
		job := &ejv1.ExtractionJob{ObjectMeta: metav1.ObjectMeta{Name: "gitops", Namespace: namespace}}
		setPodSucceeded(ctx, waitForAttemptPod(ctx, job, 1), `{"pages":1}`)
		done := waitForPhase(ctx, job, ejv1.PhaseSucceeded)

		apply()
		Consistently(func(g Gomega) {
			current := getJob(g, ctx, job)
			g.Expect(current.ResourceVersion).To(Equal(done.ResourceVersion))
			g.Expect(attemptPods(g, ctx, job)).To(HaveLen(1))
		}).WithTimeout(2 * time.Second).Should(Succeed())
	})
})
