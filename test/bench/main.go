// Command bench measures the ExtractionJob operator side by side with the
// batch/v1 Job controller of kube-controller-manager and with the API
// ceiling, on fresh local API servers: throughput, API requests per job and
// per attempt, retry punctuality, memory and cold start at scale, and
// latency at steady arrival rates; and, on the operator alone, jobs behind
// an ExtractorClass's maxRunning (-scenarios=queue) and an outage of the
// backend with the class's circuit breaker off and on (-scenarios=outage),
// neither in the default run.
// See BENCHMARKS.md; run it with `make bench`.
package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/pybase/extraction-operator/test/bench/config"
	"github.com/pybase/extraction-operator/test/bench/report"
	"github.com/pybase/extraction-operator/test/bench/scenario"
	"github.com/pybase/extraction-operator/test/bench/sides"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run() error {
	s, err := config.Parse(os.Args[1:])
	if err != nil {
		return err
	}
	if s.Replot != "" {
		if err := report.Replot(s.Replot); err != nil {
			return err
		}
		dir := filepath.Dir(s.Replot)
		scenario.Logf("wrote %s and %s from %s", filepath.Join(dir, "bench.md"), filepath.Join(dir, "bench.png"), s.Replot)
		return nil
	}
	// The harness's caches would log through controller-runtime's logger;
	// client-go still reports watch errors through klog.
	ctrllog.SetLogger(logr.Discard())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	for _, dir := range []string{s.WorkDir, s.OutDir} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	manager := filepath.Join(s.WorkDir, "manager")
	scenario.Logf("building the operator into %s", manager)
	build := exec.CommandContext(ctx, "go", "build", "-o", manager, "./cmd")
	build.Dir, build.Stdout, build.Stderr = s.Root, os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("building the operator: %w", err)
	}
	for _, bin := range []string{filepath.Join(s.AssetsDir, "kube-apiserver"), filepath.Join(s.AssetsDir, "etcd"), filepath.Join(s.KubeBinDir, "kube-controller-manager")} {
		if _, err := os.Stat(bin); err != nil {
			return fmt.Errorf("%s is missing: run hack/build-tools.sh all", bin)
		}
	}

	rep := report.New(s)
	newSide := func(name string) sides.Side {
		switch name {
		case sides.OperatorName:
			return sides.NewOperator(manager)
		case sides.JobControllerName:
			return sides.NewJobController(filepath.Join(s.KubeBinDir, "kube-controller-manager"))
		default:
			return sides.NewCeiling(64)
		}
	}
	// controllers are the sides that run scenarios 1 and 2.
	controllers := func(yield func(string) bool) {
		for _, name := range s.Sides {
			if name != sides.CeilingName && !yield(name) {
				return
			}
		}
	}
	add := func(r *report.Result) {
		rep.Results = append(rep.Results, r)
		scenario.Logf("%s", r.OneLine())
	}
	if s.Runs("throughput") {
		for _, limits := range s.ThroughputLimits {
			for name := range controllers {
				add(scenario.Throughput(ctx, s, newSide(name), limits))
			}
		}
		if slices.Contains(s.Sides, sides.CeilingName) {
			add(scenario.Throughput(ctx, s, newSide(sides.CeilingName), s.Off))
		}
	}
	if s.Runs("retry") {
		for name := range controllers {
			add(scenario.Retry(ctx, s, newSide(name), s.OtherLimits))
		}
	}
	if s.Runs("retry-restart") && slices.Contains(s.Sides, sides.OperatorName) {
		// Only the operator promises retry times to be kept across a restart.
		add(scenario.RetryRestart(ctx, s, newSide(sides.OperatorName), s.OtherLimits))
	}
	if s.Runs("scale") {
		for _, name := range s.ScaleSides {
			add(scenario.Scale(ctx, s, newSide(name), s.OtherLimits))
		}
	}
	if s.Runs("latency") {
		for _, rate := range s.Rates {
			for _, name := range s.Sides {
				limits := s.OtherLimits
				if name == sides.CeilingName {
					limits = s.Off
				}
				add(scenario.Latency(ctx, s, newSide(name), limits, rate))
			}
		}
	}
	if s.Runs("queue") {
		for _, n := range s.QueueN {
			add(scenario.Queue(ctx, s, newSide(sides.OperatorName), s.OtherLimits, n, s.QueueMaxRunning))
		}
		for _, n := range s.QueueUncappedN {
			add(scenario.Queue(ctx, s, newSide(sides.OperatorName), s.OtherLimits, n, 0))
		}
	}
	if s.Runs("outage") {
		for _, breaker := range []bool{false, true} {
			add(scenario.Outage(ctx, s, newSide(sides.OperatorName), s.OtherLimits, breaker))
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	rep.Finished = time.Now()
	rep.LoadAvgEnd = report.LoadAvg()
	fmt.Println(rep.Table())
	if err := rep.Write(s.OutDir); err != nil {
		return err
	}
	scenario.Logf("wrote %s, %s and %s", filepath.Join(s.OutDir, "bench.json"), filepath.Join(s.OutDir, "bench.md"), filepath.Join(s.OutDir, "bench.png"))
	return nil
}
