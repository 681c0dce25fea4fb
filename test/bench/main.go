// Command bench measures the ExtractionJob operator side by side with the
// batch/v1 Job controller of kube-controller-manager and with the API
// ceiling, on fresh local API servers: throughput, API requests per job and
// per attempt, retry punctuality, memory and cold start at scale, and
// latency at steady arrival rates. See BENCHMARKS.md; run it with `make bench`.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run() error {
	s, err := parseSettings(os.Args[1:])
	if err != nil {
		return err
	}
	if s.Replot != "" {
		return replot(s.Replot)
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
	logf("building the operator into %s", manager)
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

	report := newReport(s)
	newSide := func(name string) Side {
		switch name {
		case "operator":
			return &operatorSide{binary: manager}
		case "job-controller":
			return &jobControllerSide{binary: filepath.Join(s.KubeBinDir, "kube-controller-manager")}
		default:
			return &ceilingSide{workers: 64}
		}
	}
	// controllers are the sides that run scenarios 1 and 2.
	controllers := func(yield func(string) bool) {
		for _, name := range s.Sides {
			if name != "api-ceiling" && !yield(name) {
				return
			}
		}
	}
	add := func(r *Result) {
		report.Results = append(report.Results, r)
		logf("%s", r.oneLine())
	}
	if s.runs("throughput") {
		for _, limits := range s.ThroughputLimits {
			for name := range controllers {
				add(scenarioThroughput(ctx, s, newSide(name), limits))
			}
		}
		if has(s.Sides, "api-ceiling") {
			add(scenarioThroughput(ctx, s, newSide("api-ceiling"), s.Off))
		}
	}
	if s.runs("retry") {
		for name := range controllers {
			add(scenarioRetry(ctx, s, newSide(name), s.OtherLimits))
		}
	}
	if s.runs("scale") {
		for _, name := range s.ScaleSides {
			add(scenarioScale(ctx, s, newSide(name), s.OtherLimits))
		}
	}
	if s.runs("latency") {
		for _, rate := range s.Rates {
			for _, name := range s.Sides {
				limits := s.OtherLimits
				if name == "api-ceiling" {
					limits = s.Off
				}
				add(scenarioLatency(ctx, s, newSide(name), limits, rate))
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	report.Finished = time.Now()
	report.LoadAvgEnd = loadAvg()
	table := report.Table()
	fmt.Println(table)
	if err := report.write(s.OutDir); err != nil {
		return err
	}
	logf("wrote %s, %s and %s", filepath.Join(s.OutDir, "bench.json"), filepath.Join(s.OutDir, "bench.md"), filepath.Join(s.OutDir, "bench.png"))
	return nil
}

// replot draws bench.png and bench.md again from a bench.json, next to it,
// without running anything: for when the presentation changed but the
// measurements did not. bench.json itself is left as it is.
func replot(path string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	report := &Report{}
	if err := json.Unmarshal(raw, report); err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	dir := filepath.Dir(path)
	if err := report.writePresentation(dir); err != nil {
		return err
	}
	logf("wrote %s and %s from %s", filepath.Join(dir, "bench.md"), filepath.Join(dir, "bench.png"), path)
	return nil
}

func has(list []string, want string) bool {
	for _, v := range list {
		if v == want {
			return true
		}
	}
	return false
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}
