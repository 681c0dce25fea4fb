// Command manager runs the ExtractionJob operator.
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/flowcontrol"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
	"github.com/pybase/extraction-operator/controllers"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		metricsAddr, probeAddr string
		secureMetrics          bool
		leaderElect            bool
		leaderElectionNS       string
		qps                    float64
		burst, concurrency     int
		pullGrace              time.Duration
	)
	flag.StringVar(&metricsAddr, "metrics-bind-address", ":8443", `Address of the metrics endpoint; "0" turns it off.`)
	flag.BoolVar(&secureMetrics, "metrics-secure", true, "Serve metrics over HTTPS to authenticated and authorized clients only.")
	flag.StringVar(&probeAddr, "health-probe-bind-address", ":8081", "Address of the health and readiness probes.")
	flag.BoolVar(&leaderElect, "leader-elect", false, "Elect a leader, so that only one of several replicas acts.")
	flag.StringVar(&leaderElectionNS, "leader-election-namespace", "", "Namespace of the leader election lease; defaults to the operator's own namespace in a cluster.")
	flag.Float64Var(&qps, "kube-api-qps", 50, "Requests per second the operator may send to the API server, all resources together; negative: no limit.")
	flag.IntVar(&burst, "kube-api-burst", 100, "Burst of requests above --kube-api-qps, all resources together.")
	flag.IntVar(&concurrency, "max-concurrent-reconciles", 4, "Jobs reconciled at once.")
	flag.DurationVar(&pullGrace, "image-pull-grace-period", controllers.DefaultImagePullGracePeriod,
		"How long an attempt may wait for its image or container configuration before it fails as retryable; must be positive.")
	zapOptions := zap.Options{}
	zapOptions.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOptions)))
	if pullGrace <= 0 {
		// Options read zero as "the default": refuse it rather than wait five
		// minutes when asked not to wait at all.
		return fmt.Errorf("--image-pull-grace-period must be positive, got %s", pullGrace)
	}

	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(ejv1.AddToScheme(scheme))

	restConfig, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("loading kubeconfig: %w", err)
	}
	limitRequests(restConfig, qps, burst)

	metricsOptions := metricsserver.Options{BindAddress: metricsAddr, SecureServing: secureMetrics}
	if secureMetrics {
		metricsOptions.FilterProvider = filters.WithAuthenticationAndAuthorization
	}
	mgr, err := ctrl.NewManager(restConfig, ctrl.Options{
		Scheme:                        scheme,
		Cache:                         controllers.CacheOptions(),
		Metrics:                       metricsOptions,
		HealthProbeBindAddress:        probeAddr,
		LeaderElection:                leaderElect,
		LeaderElectionID:              "extraction-operator.extraction.pybase.io",
		LeaderElectionNamespace:       leaderElectionNS,
		LeaderElectionReleaseOnCancel: true,
		Controller:                    config.Controller{MaxConcurrentReconciles: concurrency},
	})
	if err != nil {
		return fmt.Errorf("creating manager: %w", err)
	}
	err = controllers.SetupExtractionJob(mgr, controllers.Options{ImagePullGracePeriod: pullGrace})
	if err != nil {
		return fmt.Errorf("setting up the ExtractionJob controller: %w", err)
	}
	if err := controllers.RegisterMetrics(mgr.GetClient()); err != nil {
		return fmt.Errorf("registering metrics: %w", err)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return err
	}
	ctrl.Log.Info("starting operator", "qps", qps, "burst", burst, "maxConcurrentReconciles", concurrency)
	return mgr.Start(ctrl.SetupSignalHandler())
}

// limitRequests gives all of the operator's requests one budget. Without a
// shared limiter, each resource's client (Pods, jobs, events, leases) gets a
// bucket of its own, and the operator could send several times the QPS it
// was given. A negative qps lifts the limit, as in client-go.
func limitRequests(cfg *rest.Config, qps float64, burst int) {
	cfg.QPS, cfg.Burst = float32(qps), burst
	if qps > 0 {
		cfg.RateLimiter = flowcontrol.NewTokenBucketRateLimiter(float32(qps), burst)
	}
}
