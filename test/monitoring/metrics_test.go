package monitoring

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
	"github.com/pybase/extraction-operator/test/harness"
	"github.com/pybase/extraction-operator/test/harness/builders"
	"github.com/pybase/extraction-operator/test/harness/sim"
)

const scenarioNamespace = "monitoring-scenario"

var scenarioScrape once[[]byte]

// exportedMetrics is the operator's /metrics, as text, after a scenario in
// which every one of its metrics gets a series: a retried job whose
// extractor sent a Retry-After it cannot read, a job that fails for good, a
// cancelled job retried by hand, a capped class that queues two jobs and
// admits one, an OOMKilled attempt retried with more memory, and a circuit
// breaker that opens and parks its job. The scrape is taken once it has a
// series of every metric the dashboard shows, which are all the operator's
// (controllers' TestTheDashboardShowsEveryMetric).
func exportedMetrics(t *testing.T) []byte {
	t.Helper()
	var shown []string
	for _, q := range dashboardQueries(t) {
		if q.parsed != nil {
			selectors, _ := selectorsAndGroupings(q.parsed)
			for _, s := range selectors {
				shown = append(shown, metricName(s))
			}
		}
	}
	op := theOperator(t)
	c := theCluster(t)
	return scenarioScrape.get(t, func() ([]byte, error) {
		scrape, err := runScenario(c.client, op, shown)
		if err != nil {
			return nil, err
		}
		// Kept with the logs of a failed run, for a person to read what was checked.
		return scrape, os.WriteFile(filepath.Join(c.dir, "metrics.txt"), scrape, 0o644)
	})
}

func runScenario(k8s client.Client, op *runningOperator, want []string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const image = "registry.example/extractor:monitoring"
	oom := builders.ExtractorClass("monitoring-oom", image)
	oom.Spec.Resources = &ejv1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")}}
	oom.Spec.OnOOMKilled = &ejv1.OnOOMKilled{MemoryFactor: 2, MaxMemory: resource.MustParse("1Gi")}
	objects := []client.Object{
		builders.Namespace(scenarioNamespace, nil),
		builders.ExtractorClass("monitoring-plain", image),
		builders.ExtractorClass("monitoring-capped", image, builders.WithMaxRunning(1)),
		builders.ExtractorClass("monitoring-breaker", image, builders.WithCircuitBreaker(ejv1.CircuitBreaker{
			ConsecutiveFailures: 1, OpenDuration: &metav1.Duration{Duration: 10 * time.Minute},
		})),
		oom,
	}
	fastRetries := builders.WithRetryPolicy(3, 3, ejv1.Backoff{Base: metav1.Duration{Duration: time.Second}})
	jobs := map[string]*ejv1.ExtractionJob{
		"retried": builders.ExtractionJob(scenarioNamespace, "retried", sim.Plan{
			Attempts: []sim.Token{sim.Fail, sim.OK}, Message: "ConnectionError: refused\nRetry-After: soon",
		}, builders.WithClass("monitoring-plain"), fastRetries),
		"permanent": builders.ExtractionJob(scenarioNamespace, "permanent", sim.Plan{Attempts: []sim.Token{sim.Perm}},
			builders.WithClass("monitoring-plain"), fastRetries),
		"cancelled": builders.ExtractionJob(scenarioNamespace, "cancelled", sim.Plan{}, builders.WithClass("monitoring-plain"),
			func(job *ejv1.ExtractionJob) { job.Spec.Cancel = true }),
		"oom": builders.ExtractionJob(scenarioNamespace, "oom", sim.Plan{
			Attempts: []sim.Token{sim.Fail, sim.OK}, Reason: sim.ReasonOOMKilled, ExitCode: ptr.To(sim.KilledExitCode),
		}, builders.WithClass("monitoring-oom"), fastRetries),
		"breaker": builders.ExtractionJob(scenarioNamespace, "breaker", sim.Plan{
			Attempts: []sim.Token{sim.Fail}, Message: "ConnectionError: the service is down",
		}, builders.WithClass("monitoring-breaker"), fastRetries),
	}
	for _, obj := range objects {
		if err := k8s.Create(ctx, obj); err != nil {
			return nil, fmt.Errorf("creating %s: %w", obj.GetName(), err)
		}
	}
	for _, job := range jobs {
		if err := k8s.Create(ctx, job); err != nil {
			return nil, fmt.Errorf("creating job %s: %w", job.Name, err)
		}
	}
	// The capped class runs one attempt at a time: the first job runs for 5
	// s, the two that come while it runs wait, one is admitted when it ends
	// and holds its slot, so the other is still queued when the scrape comes.
	capped := func(name string, plan sim.Plan) error {
		jobs[name] = builders.ExtractionJob(scenarioNamespace, name, plan, builders.WithClass("monitoring-capped"))
		return k8s.Create(ctx, jobs[name])
	}
	if err := capped("capped-first", sim.Plan{RunSeconds: []int{5}}); err != nil {
		return nil, fmt.Errorf("creating job capped-first: %w", err)
	}
	if err := eventually(ctx, func(g Gomega) {
		job := &ejv1.ExtractionJob{}
		g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(jobs["capped-first"]), job)).To(Succeed())
		g.Expect(job.Status.Phase).To(Equal(ejv1.PhaseRunning))
	}); err != nil {
		return nil, fmt.Errorf("the capped class's first job did not run: %w", err)
	}
	for _, name := range []string{"capped-held-a", "capped-held-b"} {
		if err := capped(name, sim.Plan{Attempts: []sim.Token{sim.Hold}}); err != nil {
			return nil, fmt.Errorf("creating job %s: %w", name, err)
		}
	}

	wantPhases := map[string]ejv1.Phase{
		"retried": ejv1.PhaseSucceeded, "permanent": ejv1.PhaseFailed, "cancelled": ejv1.PhaseCancelled,
		"oom": ejv1.PhaseSucceeded, "breaker": ejv1.PhaseQueued,
		"capped-first": ejv1.PhaseSucceeded,
	}
	if err := eventually(ctx, func(g Gomega) {
		for name, want := range wantPhases {
			job := &ejv1.ExtractionJob{}
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(jobs[name]), job)).To(Succeed())
			g.Expect(job.Status.Phase).To(Equal(want), "job %s: %s", name, job.Status.Message)
		}
		var held []ejv1.Phase
		for _, name := range []string{"capped-held-a", "capped-held-b"} {
			job := &ejv1.ExtractionJob{}
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(jobs[name]), job)).To(Succeed())
			held = append(held, job.Status.Phase)
		}
		g.Expect(held).To(ConsistOf(ejv1.PhaseRunning, ejv1.PhaseQueued), "one waiting job admitted, the other still queued")
	}); err != nil {
		return nil, fmt.Errorf("the scenario's jobs did not reach their phases: %w\n%s", err, op.process.LogTail(20))
	}

	// Retried by hand after its cancel.
	cancelled := &ejv1.ExtractionJob{}
	if err := k8s.Get(ctx, client.ObjectKeyFromObject(jobs["cancelled"]), cancelled); err != nil {
		return nil, err
	}
	patch := client.MergeFrom(cancelled.DeepCopy())
	cancelled.Spec.Cancel = false
	cancelled.Annotations = map[string]string{ejv1.RetryRequestAnnotation: "monitoring"}
	if err := k8s.Patch(ctx, cancelled, patch); err != nil {
		return nil, fmt.Errorf("retrying the cancelled job: %w", err)
	}

	var scrape []byte
	err := eventually(ctx, func(g Gomega) {
		code, body, err := harness.Scrape("http://"+op.metricsAddress+"/metrics", "")
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(code).To(Equal(http.StatusOK))
		scrape = []byte(body)
		series, err := seriesOf(scrape)
		g.Expect(err).NotTo(HaveOccurred())
		for _, name := range want {
			g.Expect(series).To(HaveKey(name), "after the scenario the operator exports a series of %s", name)
		}
	})
	return scrape, err
}

// eventually runs check until it passes, for at most two minutes, and
// returns its last failure.
func eventually(ctx context.Context, check func(g Gomega)) error {
	var failure string
	g := NewGomega(func(message string, _ ...int) { failure = message })
	if !g.Eventually(ctx, check).WithTimeout(2 * time.Minute).WithPolling(250 * time.Millisecond).Should(Succeed()) {
		return errors.New(failure)
	}
	return nil
}

func parseExposition(scrape []byte) (map[string]*dto.MetricFamily, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	return parser.TextToMetricFamilies(bytes.NewReader(scrape))
}

// exportedSeries are the series names of the scenario's scrape, each with
// the labels its series have.
func exportedSeries(t *testing.T) map[string]map[string]bool {
	t.Helper()
	series, err := seriesOf(exportedMetrics(t))
	if err != nil {
		t.Fatal(err)
	}
	return series
}

// seriesOf reads the series names of a scrape (a histogram's _bucket, _sum
// and _count), each with the labels its series have.
func seriesOf(scrape []byte) (map[string]map[string]bool, error) {
	families, err := parseExposition(scrape)
	if err != nil {
		return nil, err
	}
	series := map[string]map[string]bool{}
	add := func(name string, metric *dto.Metric, extra ...string) {
		if series[name] == nil {
			series[name] = map[string]bool{}
		}
		for _, pair := range metric.Label {
			series[name][pair.GetName()] = true
		}
		for _, label := range extra {
			series[name][label] = true
		}
	}
	for name, family := range families {
		for _, metric := range family.Metric {
			switch family.GetType() {
			case dto.MetricType_HISTOGRAM:
				add(name+"_bucket", metric, model.BucketLabel)
				add(name+"_sum", metric)
				add(name+"_count", metric)
			case dto.MetricType_SUMMARY:
				add(name, metric, model.QuantileLabel)
				add(name+"_sum", metric)
				add(name+"_count", metric)
			default:
				add(name, metric)
			}
		}
	}
	return series, nil
}

// The scrape passes promtool's lint of the exposition format: counters end
// in _total, units are base units and named, every metric has help.
func TestTheOperatorsMetricsPassPromtoolCheckMetrics(t *testing.T) {
	scrape := exportedMetrics(t)
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(scrape)
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "" {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}
