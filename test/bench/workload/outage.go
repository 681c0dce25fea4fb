package workload

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
	"github.com/pybase/extraction-operator/test/harness/builders"
	"github.com/pybase/extraction-operator/test/harness/sim"
)

// The outage scenario's class and jobs: the figures scaled down so
// that the scenario runs in minutes.
const (
	OutageClassName  = "bench-outage"
	OutageMaxRunning = 50
	// OutageRunSeconds is how long each attempt runs: long enough that
	// maxRunning, not the operator's pace, bounds the attempts in flight,
	// and short enough that the queue behind maxRunning does not spread the
	// jobs' retries (2 s, 8 s, 32 s) past the window.
	OutageRunSeconds   = 1
	OutageBackoffBase  = 2 * time.Second
	OutageFailures     = 5
	OutageOpenDuration = 10 * time.Second
	OutageProbes       = 1
	OutageRampUp       = 10 * time.Second
)

// OutageClass is the outage scenario's class, capped at OutageMaxRunning,
// with the circuit breaker on or, as every peer behaves, off.
func OutageClass(breaker bool) *ejv1.ExtractorClass {
	class := builders.ExtractorClass(OutageClassName, Image, builders.WithFormats(ejv1.FormatPDF), builders.WithMaxRunning(OutageMaxRunning))
	if breaker {
		class.Spec.CircuitBreaker = &ejv1.CircuitBreaker{
			ConsecutiveFailures: OutageFailures,
			OpenDuration:        &metav1.Duration{Duration: OutageOpenDuration},
			Probes:              OutageProbes,
			RampUp:              &metav1.Duration{Duration: OutageRampUp},
		}
	}
	return class
}

// OutageJob is a job of the outage class whose attempts succeed after
// OutageRunSeconds, unless the backend is down when they end.
func OutageJob(name string) *ejv1.ExtractionJob {
	plan := PlanSucceed.Sim()
	plan.RunSeconds = []int{OutageRunSeconds}
	return extractionJob(name, plan, builders.WithClass(OutageClassName),
		builders.WithRetryPolicy(MaxRetries, maxDisruptions, ejv1.Backoff{Base: metav1.Duration{Duration: OutageBackoffBase}}))
}

// ServiceUnavailable is how an attempt against the dead backend ends: as the
// extractor reports an HTTP 503, with sysexits' EX_UNAVAILABLE.
var ServiceUnavailable = sim.Result{
	Phase: corev1.PodFailed, ContainerReason: sim.ReasonError, ExitCode: 69,
	ContainerMessage: "ServiceUnavailable: the extraction backend answered 503",
}
