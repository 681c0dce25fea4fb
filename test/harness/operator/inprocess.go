package operator

import (
	"context"
	"os"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/pybase/extraction-operator/controllers"
)

// InProcessOptions configure an operator run in the test's process.
type InProcessOptions struct {
	// Config is the operator's client configuration: a test wraps its
	// transport to fail requests.
	Config *rest.Config
	Scheme *runtime.Scheme
	// LogPath receives the operator's JSON log (appended).
	LogPath                 string
	MaxConcurrentReconciles int
}

// StartInProcess runs the reconciler as cmd/main.go does, through the
// exported API only, and returns a function that stops it.
func StartInProcess(opts InProcessOptions) (func(), error) {
	logFile, err := os.OpenFile(opts.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	mgr, err := ctrl.NewManager(opts.Config, ctrl.Options{
		Scheme:                 opts.Scheme,
		Cache:                  controllers.CacheOptions(),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Logger:                 zap.New(zap.WriteTo(logFile)),
		Controller:             config.Controller{SkipNameValidation: ptr.To(true), MaxConcurrentReconciles: opts.MaxConcurrentReconciles},
	})
	if err != nil {
		logFile.Close()
		return nil, err
	}
	// The operator's own constructor, as cmd/main.go uses it.
	err = controllers.SetupExtractionJob(mgr, controllers.Options{
		ImagePullGracePeriod: time.Minute,
	})
	if err != nil {
		logFile.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	return func() {
		cancel()
		select {
		case <-done:
		case <-time.After(time.Minute):
		}
		logFile.Close()
	}, nil
}
