package controllers

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/pybase/extraction-operator/api/podcontract"
	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
)

// otherErrorType stands for every error type outside the known set, so an
// extractor that invents error types cannot explode the metrics' cardinality.
const otherErrorType = "Other"

// The names of the metrics that transitions queue samples of.
const (
	metricAttemptsFinished = "extractionjob_attempts_finished_total"
	metricRetriesScheduled = "extractionjob_retries_scheduled_total"
	metricAttemptDuration  = "extractionjob_attempt_duration_seconds"
	metricBackoffDelay     = "extractionjob_backoff_delay_seconds"
	metricRetryLateness    = "extractionjob_retry_lateness_seconds"
	metricManualRetries    = "extractionjob_manual_retries_total"
	metricCancels          = "extractionjob_cancels_total"
	// metricOOMMemoryIncreases is class core's; the other class metrics are the admission queue's.
	metricOOMMemoryIncreases = "extractionjob_oom_memory_increases_total"
)

var (
	attemptsFinished = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: metricAttemptsFinished,
		Help: "Attempts that ended, by format, outcome, failure class and error type (known types, else Other).",
	}, []string{"format", "outcome", "class", "error_type"})

	retriesScheduled = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: metricRetriesScheduled,
		Help: "Retries scheduled, by format and by the class of the failure that caused them.",
	}, []string{"format", "class"})

	attemptDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    metricAttemptDuration,
		Help:    "Time from an attempt's Pod creation to the operator seeing it end.",
		Buckets: prometheus.ExponentialBuckets(1, 2, 14), // 1 s to about 2.3 h
	}, []string{"format", "outcome"})

	backoffDelay = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    metricBackoffDelay,
		Help:    "Wait scheduled before a retry, jitter included.",
		Buckets: prometheus.ExponentialBuckets(1, 2, 14),
	}, []string{"format", "class"})

	retryLateness = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    metricRetryLateness,
		Help:    "Time between a retry's nextRetryAt and the creation of its Pod.",
		Buckets: []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60},
	})

	manualRetries = prometheus.NewCounter(prometheus.CounterOpts{
		Name: metricManualRetries,
		Help: "Manual retry requests that restarted a job.",
	})

	cancels = prometheus.NewCounter(prometheus.CounterOpts{
		Name: metricCancels,
		Help: "Jobs cancelled through spec.cancel.",
	})

	oomMemoryIncreases = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: metricOOMMemoryIncreases,
		Help: "Attempts started with more memory than the attempt before, after OOMKilled attempts, by ExtractorClass.",
	}, []string{"extractor_class"})

	jobsDesc = prometheus.NewDesc("extractionjob_jobs",
		"ExtractionJobs by phase and format, as the operator's cache holds them.",
		[]string{"phase", "format"}, nil)
)

// transitionMetrics are the metrics that transitions queue samples of, by name.
var transitionMetrics = map[string]prometheus.Collector{
	metricAttemptsFinished:   attemptsFinished,
	metricRetriesScheduled:   retriesScheduled,
	metricAttemptDuration:    attemptDuration,
	metricBackoffDelay:       backoffDelay,
	metricRetryLateness:      retryLateness,
	metricManualRetries:      manualRetries,
	metricCancels:            cancels,
	metricOOMMemoryIncreases: oomMemoryIncreases,
}

// record adds the sample to its metric.
func (o observation) record() {
	switch m := transitionMetrics[o.Metric].(type) {
	case *prometheus.CounterVec:
		m.With(o.Labels).Add(o.Value)
	case *prometheus.HistogramVec:
		m.With(o.Labels).Observe(o.Value)
	case prometheus.Counter:
		m.Add(o.Value)
	case prometheus.Histogram:
		m.Observe(o.Value)
	default:
		panic(fmt.Sprintf("no transition metric is named %q", o.Metric))
	}
}

// knownMetricErrorTypes are the error types that keep their own label value.
var knownMetricErrorTypes = slices.Concat(podcontract.BuiltinErrorTypes(), []string{
	ejv1.ErrorTypeOOMKilled, ejv1.ErrorTypePodEvicted, ejv1.ErrorTypePodPreempted,
	ejv1.ErrorTypePodDisrupted, ejv1.ErrorTypeNodeLost, ejv1.ErrorTypePodDeleted,
	ejv1.ErrorTypeInvalidImageName, ejv1.ErrorTypeImagePull, ejv1.ErrorTypeContainerConfig,
	ejv1.ErrorTypeInvalidPodSpec, ejv1.ErrorTypeUnknown,
})

func metricErrorType(errorType string) string {
	if errorType == "" || slices.Contains(knownMetricErrorTypes, errorType) {
		return errorType
	}
	return otherErrorType
}

// jobsCollector counts jobs by phase and format at scrape time from the
// cache, so the gauge is right after a restart and costs no API call.
type jobsCollector struct {
	reader client.Reader
}

func (c jobsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- jobsDesc }

func (c jobsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	jobs := &ejv1.ExtractionJobList{}
	if err := c.reader.List(ctx, jobs); err != nil {
		ch <- prometheus.NewInvalidMetric(jobsDesc, err)
		return
	}
	type key struct{ phase, format string }
	counts := map[key]int{}
	for _, phase := range []ejv1.Phase{ejv1.PhasePending, ejv1.PhaseRunning, ejv1.PhaseRetrying, ejv1.PhaseSucceeded, ejv1.PhaseFailed, ejv1.PhaseCancelled} {
		for _, format := range ejv1.Formats {
			counts[key{string(phase), string(format)}] = 0
		}
	}
	for _, job := range jobs.Items {
		phase := job.Status.Phase
		if phase == "" {
			phase = ejv1.PhasePending
		}
		counts[key{string(phase), string(job.Spec.Format)}]++
	}
	for k, n := range counts {
		ch <- prometheus.MustNewConstMetric(jobsDesc, prometheus.GaugeValue, float64(n), k.phase, k.format)
	}
}

// RegisterMetrics adds the operator's metrics to controller-runtime's
// registry, which its metrics endpoint serves. reader is the manager's cache.
func RegisterMetrics(reader client.Reader) error {
	for _, c := range operatorCollectors(reader) {
		if err := metrics.Registry.Register(c); err != nil {
			return err
		}
	}
	return nil
}

func operatorCollectors(reader client.Reader) []prometheus.Collector {
	return []prometheus.Collector{
		attemptsFinished, retriesScheduled, attemptDuration, backoffDelay,
		retryLateness, manualRetries, cancels, oomMemoryIncreases, jobsCollector{reader: reader},
	}
}
