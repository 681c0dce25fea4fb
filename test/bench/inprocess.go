package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
	"github.com/pybase/extraction-operator/controllers"
)

// retryPriority puts a timed wake-up (a due retry) ahead of event-driven
// reconciles, which the priority queue runs at priority 0.
const retryPriority = 10

// inProcessSide runs the operator's reconciler inside the harness, wired as
// cmd/main.go wires it, so that a change of its wiring can be tried without
// touching the operator: with prioritize set, every timed requeue (a due
// retry) carries a priority above event-driven work. Its CPU time counts
// as the harness's; its requests are counted as the side's.
//
// It exists for one experiment (does the retry backlog explain retry
// lateness?) and runs only when asked for with -sides.
type inProcessSide struct {
	prioritize bool
	// runs numbers the controllers, whose metrics share the process's registry.
	runs        int
	controller  string
	metricsAddr string
	cancel      context.CancelFunc
	done        chan struct{}
}

func (p *inProcessSide) Name() string {
	if p.prioritize {
		return "operator-priority"
	}
	return "operator-inproc"
}

func (p *inProcessSide) Start(ctx context.Context, r *Run) error {
	cfg := r.Counters.Side.Wrap(r.Cluster.Admin)
	cfg.QPS, cfg.Burst = float32(r.Limits.QPS), r.Limits.Burst
	var err error
	if p.metricsAddr, err = freeAddress(); err != nil {
		return err
	}
	p.runs++
	p.controller = fmt.Sprintf("extractionjob-%s-%d", p.Name(), p.runs)
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 scheme,
		Cache:                  controllers.CacheOptions(),
		Metrics:                metricsserver.Options{BindAddress: p.metricsAddr},
		HealthProbeBindAddress: "0",
		Controller:             config.Controller{MaxConcurrentReconciles: r.Limits.Concurrency, SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		return err
	}
	inner := &controllers.ExtractionJobReconciler{
		Client:               mgr.GetClient(),
		APIReader:            mgr.GetAPIReader(),
		Recorder:             mgr.GetEventRecorder("extraction-operator"),
		Clock:                clock.RealClock{},
		Jitter:               rand.Float64,
		Images:               controllers.ExtractorImages{Default: benchImage},
		ImagePullGracePeriod: 5 * time.Minute,
	}
	var rec reconcile.Reconciler = inner
	if p.prioritize {
		rec = reconcile.Func(func(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
			res, err := inner.Reconcile(ctx, req)
			if res.RequeueAfter > 0 {
				res.Priority = ptr.To(retryPriority)
			}
			return res, err
		})
	}
	// The same watches and predicates as ExtractionJobReconciler.SetupWithManager.
	err = ctrl.NewControllerManagedBy(mgr).
		For(&ejv1.ExtractionJob{}, builder.WithPredicates(predicate.Or(
			predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		Owns(&corev1.Pod{}).
		Named(p.controller).
		Complete(rec)
	if err != nil {
		return err
	}
	ctx, p.cancel = context.WithCancel(ctx)
	p.done = make(chan struct{})
	go func() {
		defer close(p.done)
		if err := mgr.Start(ctx); err != nil {
			logf("%s: %v", p.Name(), err)
		}
	}()
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		return errors.New("the in-process operator's caches did not sync")
	}
	return nil
}

func (p *inProcessSide) Stop() {
	if p.cancel != nil {
		p.cancel()
		<-p.done
		p.cancel = nil
	}
}

func (p *inProcessSide) Process() *Process    { return nil }
func (p *inProcessSide) SyncedMarker() string { return "" }
func (p *inProcessSide) HeapBytes(context.Context) (float64, error) {
	return 0, errors.New("the in-process operator shares the harness's heap")
}
func (p *inProcessSide) NewJob(name string, plan Plan) client.Object {
	return extractionJob(name, plan)
}
func (p *inProcessSide) JobType() client.Object           { return &ejv1.ExtractionJob{} }
func (p *inProcessSide) State(obj client.Object) JobState { return extractionJobState(obj) }

func (p *inProcessSide) view(ctx context.Context) (*OperatorView, error) {
	return scrapeOperatorView(ctx, "http://"+p.metricsAddr+"/metrics", p.controller)
}
