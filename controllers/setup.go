package controllers

import (
	"math/rand/v2"
	"time"

	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

const (
	// DefaultImagePullGracePeriod is how long an attempt may wait for its
	// image or container configuration unless Options say otherwise.
	DefaultImagePullGracePeriod = 5 * time.Minute
	// eventSource names the operator in the events it records.
	eventSource = "extraction-operator"
)

// Options configure the ExtractionJob reconciler. Every field has a default,
// so the zero value runs the operator as it runs in production.
type Options struct {
	// Clock tells the time the reconciler acts on; by default the real clock.
	Clock clock.PassiveClock
	// Jitter returns a random number in [0, 1) for the backoff's jitter; by
	// default rand.Float64.
	Jitter func() float64
	// ImagePullGracePeriod is how long an attempt may wait for its image or
	// its container configuration (a missing Secret, say) before it fails;
	// by default DefaultImagePullGracePeriod.
	ImagePullGracePeriod time.Duration
}

// withDefaults fills in what the options leave out.
func (o Options) withDefaults() Options {
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.Jitter == nil {
		o.Jitter = rand.Float64
	}
	if o.ImagePullGracePeriod == 0 {
		o.ImagePullGracePeriod = DefaultImagePullGracePeriod
	}
	return o
}

// NewExtractionJobReconciler builds the reconciler on a client, a reader that
// goes around that client's cache, and an event recorder.
func NewExtractionJobReconciler(c client.Client, apiReader client.Reader, recorder events.EventRecorder, opts Options) *ExtractionJobReconciler {
	opts = opts.withDefaults()
	return &ExtractionJobReconciler{
		client:               c,
		apiReader:            apiReader,
		recorder:             recorder,
		clock:                opts.Clock,
		jitter:               opts.Jitter,
		imagePullGracePeriod: opts.ImagePullGracePeriod,
		queue:                newAdmissionQueue(c, opts.Clock),
	}
}

// SetupExtractionJob runs ExtractionJobs in the manager: their reconciler on
// the manager's cache, and the one that releases the Pods of deleted jobs.
func SetupExtractionJob(mgr ctrl.Manager, opts Options) error {
	return NewExtractionJobReconciler(mgr.GetClient(), mgr.GetAPIReader(), mgr.GetEventRecorder(eventSource), opts).
		SetupWithManager(mgr)
}
