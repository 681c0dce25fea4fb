package controllers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/clock"
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
	metricAttemptsFinished  = "extractionjob_attempts_finished_total"
	metricRetriesScheduled  = "extractionjob_retries_scheduled_total"
	metricAttemptDuration   = "extractionjob_attempt_duration_seconds"
	metricBackoffDelay      = "extractionjob_backoff_delay_seconds"
	metricRetryLateness     = "extractionjob_retry_lateness_seconds"
	metricRetryAfterIgnored = "extractionjob_retry_after_ignored_total"
	metricManualRetries     = "extractionjob_manual_retries_total"
	metricCancels           = "extractionjob_cancels_total"
	metricQueueWait         = "extractionjob_queue_wait_seconds"
	// metricOOMMemoryIncreases is class core's; the other class metrics are the admission queue's.
	metricOOMMemoryIncreases = "extractionjob_oom_memory_increases_total"
	metricParkedAttempts     = "extractionjob_parked_attempts_total"
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
		Help:    "Wait scheduled before a retry, jitter included, by format, failure class and source: policy (the backoff) or hint (the extractor's Retry-After).",
		Buckets: prometheus.ExponentialBuckets(1, 2, 14),
	}, []string{"format", "class", "source"})

	retryAfterIgnored = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: metricRetryAfterIgnored,
		Help: "Retry-After hints of failed attempts not followed as asked, by reason: unparsable, capped at maxRetryAfter, or policy (retryAfter: Ignore).",
	}, []string{"reason"})

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

	queueWait = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    metricQueueWait,
		Help:    "Time from a job being ready to start an attempt to its admission, for the jobs that waited in their ExtractorClass's queue.",
		Buckets: prometheus.ExponentialBuckets(0.1, 2, 16), // 100 ms to about 55 min
	}, []string{"extractor_class"})

	oomMemoryIncreases = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: metricOOMMemoryIncreases,
		Help: "Attempts started with more memory than the attempt before, after OOMKilled attempts, by ExtractorClass.",
	}, []string{"extractor_class"})

	parkedAttempts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: metricParkedAttempts,
		Help: "Failed attempts that spent no retry because their ExtractorClass's circuit breaker was open, by ExtractorClass.",
	}, []string{"extractor_class"})

	circuitTransitions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "extractionjob_class_circuit_transitions_total",
		Help: "Changes of an ExtractorClass's circuit breaker, by the state it went to.",
	}, []string{"extractor_class", "state"})

	circuitStateDesc = prometheus.NewDesc("extractionjob_class_circuit_state",
		"1 for the state the ExtractorClass's circuit breaker is in, 0 for the others; no series for a class without a breaker.",
		[]string{"extractor_class", "state"}, nil)

	jobsDesc = prometheus.NewDesc("extractionjob_jobs",
		"ExtractionJobs by phase and format, as the operator's cache holds them.",
		[]string{"phase", "format"}, nil)

	queuedDesc = prometheus.NewDesc("extractionjob_queued",
		"ExtractionJobs in phase Queued, by the ExtractorClass they wait for, as the operator's cache holds them.",
		[]string{"extractor_class"}, nil)

	runningAttemptsDesc = prometheus.NewDesc("extractionjob_running_attempts",
		"Attempts that count against their ExtractorClass's maxRunning: its Pods that have not finished, as the operator's cache holds them.",
		[]string{"extractor_class"}, nil)

	oldestQueuedDesc = prometheus.NewDesc("extractionjob_oldest_queued_seconds",
		"How long the longest-waiting Queued job of the ExtractorClass has been ready to start an attempt; no series while none is queued.",
		[]string{"extractor_class"}, nil)

	classMaxRunningDesc = prometheus.NewDesc("extractionjob_class_max_running",
		"The ExtractorClass's spec.maxRunning; no series for a class without a cap.",
		[]string{"extractor_class"}, nil)
)

// transitionMetrics are the metrics that transitions queue samples of, by name.
var transitionMetrics = map[string]prometheus.Collector{
	metricAttemptsFinished:   attemptsFinished,
	metricRetriesScheduled:   retriesScheduled,
	metricAttemptDuration:    attemptDuration,
	metricBackoffDelay:       backoffDelay,
	metricRetryLateness:      retryLateness,
	metricRetryAfterIgnored:  retryAfterIgnored,
	metricManualRetries:      manualRetries,
	metricCancels:            cancels,
	metricQueueWait:          queueWait,
	metricOOMMemoryIncreases: oomMemoryIncreases,
	metricParkedAttempts:     parkedAttempts,
}

// queueWaitObservation is the sample of how long an admitted job waited in
// its class's queue; queue it only for a job that waited (admissionVerdict.Waited).
func queueWaitObservation(class string, waited time.Duration) observation {
	return observation{Metric: metricQueueWait, Labels: prometheus.Labels{"extractor_class": class}, Value: waited.Seconds()}
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
	ejv1.ErrorTypeExtractorClassNotAllowed, ejv1.ErrorTypeScratchSpaceExceeded, ejv1.ErrorTypeUnschedulable,
})

func metricErrorType(errorType string) string {
	if errorType == "" || slices.Contains(knownMetricErrorTypes, errorType) {
		return errorType
	}
	return otherErrorType
}

// cacheCollector counts at scrape time from the cache, so the gauges are
// right after a restart and cost no API call: jobs by phase and format, and
// by ExtractorClass the Queued jobs and the attempts that count against
// maxRunning (every class has both, zero included), the age of its oldest
// Queued job, which an alert needs because a job stuck in the queue is never
// observed by the wait histogram, and its cap.
type cacheCollector struct {
	reader client.Reader
	clock  clock.PassiveClock
}

// cacheDescs are the metrics cacheCollector gives.
var cacheDescs = []*prometheus.Desc{jobsDesc, queuedDesc, runningAttemptsDesc, oldestQueuedDesc, classMaxRunningDesc, circuitStateDesc}

func (c cacheCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, desc := range cacheDescs {
		ch <- desc
	}
}

func (c cacheCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	jobs := &ejv1.ExtractionJobList{}
	pods := &corev1.PodList{}
	classes := &ejv1.ExtractorClassList{}
	err := errors.Join(
		c.reader.List(ctx, jobs, client.UnsafeDisableDeepCopy),
		c.reader.List(ctx, pods, client.HasLabels{ejv1.ExtractorClassLabel}, client.UnsafeDisableDeepCopy),
		c.reader.List(ctx, classes, client.UnsafeDisableDeepCopy),
	)
	if err != nil {
		for _, desc := range cacheDescs {
			ch <- prometheus.NewInvalidMetric(desc, err)
		}
		return
	}
	type key struct{ phase, format string }
	counts := map[key]int{}
	for _, phase := range ejv1.Phases {
		for _, format := range ejv1.Formats {
			counts[key{string(phase), string(format)}] = 0
		}
	}
	queued, running := map[string]int{}, map[string]int{}
	oldest := map[string]time.Time{}
	for _, class := range classes.Items {
		queued[class.Name], running[class.Name] = 0, 0
		if limit := class.Spec.MaxRunning; limit != nil {
			ch <- prometheus.MustNewConstMetric(classMaxRunningDesc, prometheus.GaugeValue, float64(*limit), class.Name)
		}
		if class.Spec.CircuitBreaker != nil {
			current := circuitState(class.Status.Circuit, c.clock.Now())
			for _, state := range []ejv1.CircuitState{ejv1.CircuitClosed, ejv1.CircuitOpen, ejv1.CircuitHalfOpen} {
				ch <- prometheus.MustNewConstMetric(circuitStateDesc, prometheus.GaugeValue, boolValue(state == current), class.Name, string(state))
			}
		}
	}
	for i := range jobs.Items {
		job := &jobs.Items[i]
		phase := job.Status.Phase
		if phase == "" {
			phase = ejv1.PhasePending
		}
		counts[key{string(phase), string(job.Spec.Format)}]++
		if class, ok := queuedJobClass(job); ok {
			queued[class]++
			if readyAt, seen := oldest[class]; !seen || queueOrderKey(job).readyAt.Before(readyAt) {
				oldest[class] = queueOrderKey(job).readyAt
			}
		}
	}
	for i := range pods.Items {
		if class, ok := activeAttemptClass(&pods.Items[i]); ok {
			running[class]++
		}
	}
	for k, n := range counts {
		ch <- prometheus.MustNewConstMetric(jobsDesc, prometheus.GaugeValue, float64(n), k.phase, k.format)
	}
	for class, n := range queued {
		ch <- prometheus.MustNewConstMetric(queuedDesc, prometheus.GaugeValue, float64(n), class)
	}
	for class, n := range running {
		ch <- prometheus.MustNewConstMetric(runningAttemptsDesc, prometheus.GaugeValue, float64(n), class)
	}
	now := c.clock.Now()
	for class, readyAt := range oldest {
		ch <- prometheus.MustNewConstMetric(oldestQueuedDesc, prometheus.GaugeValue, max(0, now.Sub(readyAt).Seconds()), class)
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
		retryLateness, retryAfterIgnored, manualRetries, cancels, queueWait, oomMemoryIncreases, parkedAttempts, circuitTransitions,
		cacheCollector{reader: reader, clock: clock.RealClock{}},
	}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
