// Package report is what a benchmark run found, as bench.json, and its
// presentation: the Markdown tables and the chart.
package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/pybase/extraction-operator/test/bench/config"
	"github.com/pybase/extraction-operator/test/bench/measure"
)

// Report is everything one `make bench` measured, as written to bench.json.
type Report struct {
	Started    time.Time        `json:"started"`
	Finished   time.Time        `json:"finished"`
	Machine    Machine          `json:"machine"`
	Versions   Versions         `json:"versions"`
	Settings   *config.Settings `json:"settings"`
	Command    string           `json:"command"`
	LoadAvgBeg string           `json:"loadAvgAtStart"`
	LoadAvgEnd string           `json:"loadAvgAtEnd"`
	Results    []*Result        `json:"results"`
}

type Machine struct {
	CPUs     int    `json:"cpus"`
	Model    string `json:"model"`
	MemoryKB string `json:"memTotal"`
	Kernel   string `json:"kernel"`
}

type Versions struct {
	Go         string `json:"go"`
	Kubernetes string `json:"kubernetes"`
	Etcd       string `json:"etcd"`
	Operator   string `json:"operatorCommit"`
}

// New starts the report of a run with the given settings.
func New(s *config.Settings) *Report {
	r := &Report{Started: time.Now(), Settings: s, Command: strings.TrimSpace("go run ./test/bench " + strings.Join(os.Args[1:], " ")), LoadAvgBeg: LoadAvg()}
	r.Machine.CPUs = runtime.NumCPU()
	if raw, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		r.Machine.Model = procField(string(raw), "model name")
	}
	if raw, err := os.ReadFile("/proc/meminfo"); err == nil {
		r.Machine.MemoryKB = procField(string(raw), "MemTotal")
	}
	if raw, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		r.Machine.Kernel = strings.TrimSpace(string(raw))
	}
	r.Versions.Go = runtime.Version()
	r.Versions.Kubernetes = firstLine(output(filepath.Join(s.KubeBinDir, "kube-controller-manager"), "--version"))
	r.Versions.Etcd = firstLine(output(filepath.Join(s.AssetsDir, "etcd"), "--version"))
	commit := strings.TrimSpace(output("git", "-C", s.Root, "rev-parse", "--short", "HEAD"))
	if dirty := output("git", "-C", s.Root, "status", "--porcelain", "--", "api", "controllers", "cmd"); strings.TrimSpace(dirty) != "" {
		commit += " (operator sources modified)"
	}
	r.Versions.Operator = commit
	return r
}

func output(name string, args ...string) string {
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		return "unknown"
	}
	return string(out)
}

func firstLine(s string) string { line, _, _ := strings.Cut(strings.TrimSpace(s), "\n"); return line }

// procField reads "name : value" from /proc/cpuinfo or /proc/meminfo.
func procField(text, name string) string {
	for _, line := range strings.Split(text, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.TrimSpace(k) == name {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// LoadAvg is /proc/loadavg.
func LoadAvg() string {
	raw, _ := os.ReadFile("/proc/loadavg")
	return strings.TrimSpace(string(raw))
}

// Write writes bench.json, bench.md and bench.png into dir.
func (r *Report) Write(dir string) error {
	raw, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "bench.json"), raw, 0o644); err != nil {
		return err
	}
	return r.writePresentation(dir)
}

// Replot draws bench.png and bench.md again from a bench.json, next to it,
// without running anything: for when the presentation changed but the
// measurements did not. bench.json itself is left as it is.
func Replot(path string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	r := &Report{}
	if err := json.Unmarshal(raw, r); err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	return r.writePresentation(filepath.Dir(path))
}

// writePresentation writes what is drawn from the figures: bench.md and
// bench.png, and outage.png for the outage scenario.
func (r *Report) writePresentation(dir string) error {
	if err := os.WriteFile(filepath.Join(dir, "bench.md"), []byte(r.Table()), 0o644); err != nil {
		return err
	}
	if outage := r.of("outage"); len(outage) > 0 {
		png, err := renderOutageChart(r)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, "outage.png"), png, 0o644); err != nil {
			return err
		}
		if len(outage) == len(r.Results) {
			return nil // the other scenarios' chart would show nothing
		}
	}
	png, err := renderChart(r)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "bench.png"), png, 0o644)
}

func (r *Report) find(scenario, side, limits string) *Result {
	for _, res := range r.Results {
		if res.Scenario == scenario && res.Side == side && (limits == "" || res.Limits.Name == limits) && res.Error == "" {
			return res
		}
	}
	return nil
}

func (r *Report) of(scenario string) []*Result {
	var out []*Result
	for _, res := range r.Results {
		if res.Scenario == scenario {
			out = append(out, res)
		}
	}
	return out
}

// Table renders every scenario as Markdown, with the targets checked.
func (r *Report) Table() string {
	var b strings.Builder
	s := r.Settings
	m, v := r.Machine, r.Versions
	fmt.Fprintf(&b, "Machine: %d CPUs (%s), memory %s, Linux %s; load average %s at the start, %s at the end.\n\n", m.CPUs, m.Model, m.MemoryKB, m.Kernel, r.LoadAvgBeg, r.LoadAvgEnd)
	fmt.Fprintf(&b, "Versions: %s, %s, %s, operator at %s. Command: `%s`, %s to %s.\n\n", v.Go, v.Kubernetes, v.Etcd, v.Operator, r.Command,
		r.Started.UTC().Format(time.DateTime), r.Finished.UTC().Format(time.TimeOnly))
	fmt.Fprintf(&b, "Limits: equal = %s; off = %s. Fake kubelet keeps each Pod Running for %s. Operator environment: %s.\n\n",
		s.Equal, s.Off, s.PodRunTime, strings.Join(s.OperatorEnv, " "))

	if rows := r.of("throughput"); len(rows) > 0 {
		fmt.Fprintf(&b, "### 1. Throughput: %d jobs that succeed on the first attempt\n\n", s.ThroughputN)
		t := newTable("Side", "Limits", "Jobs/s", "Seconds", "Pod writes/job", "Status writes/job", "Events/job", "Other writes/job", "Reads/job", "Refused writes/job", "CPU s controller", "CPU s apiserver", "CPU s etcd", "Outcomes")
		for _, res := range rows {
			if res.Error != "" {
				t.row(res.Side, res.Limits.Name, "error: "+res.Error)
				continue
			}
			t.row(res.Side, res.Limits.Name, f1(res.JobsPerSecond), f1(res.Seconds),
				f2(res.PerJob.PodWrites), f2(res.PerJob.StatusWrites), f2(res.PerJob.Events), f2(res.PerJob.OtherWrites), f2(res.PerJob.Reads),
				f2(res.Measurement.RefusedWrites/float64(res.Jobs)), cpu(res, "controller"), cpu(res, "kube-apiserver"), cpu(res, "etcd"), outcomes(res))
		}
		b.WriteString(t.String())
	}
	if rows := r.of("retry-mix"); len(rows) > 0 {
		fmt.Fprintf(&b, "\n### 2. Retry mix: %d jobs (40 %% succeed, 30 %% fail once then succeed, 10 %% exhaust 3 retries, 20 %% fail permanently), backoff base 1 s, limits %s\n\n", s.RetryN, s.OtherLimits.Name)
		t := newTable("Side", "Attempts", "Pod writes/attempt", "Status writes/attempt", "Events/attempt", "Other writes/attempt", "Non-event writes/attempt", "Reads/attempt", "Refused writes/attempt", "Retry lateness p50 / p99 / max ms", "Early retries", "Seconds", "CPU s controller", "Outcomes")
		for _, res := range rows {
			if res.Error != "" {
				t.row(res.Side, "error: "+res.Error)
				continue
			}
			late, early := "n/a (10 s backoff, not settable)", "n/a"
			if res.Lateness != nil {
				late = fmt.Sprintf("%.0f / %.0f / %.0f", res.Lateness.P50, res.Lateness.P99, res.Lateness.Max)
				early = earlyRetries(res)
			}
			p := res.PerAttempt
			t.row(res.Side, fmt.Sprint(res.Attempts), f2(p.PodWrites), f2(p.StatusWrites), f2(p.Events), f2(p.OtherWrites), f2(p.NonEventWrites()), f2(p.Reads),
				f2(res.Measurement.RefusedWrites/float64(res.Attempts)), late, early, f1(res.Seconds), cpu(res, "controller"), outcomes(res))
		}
		b.WriteString(t.String())
	}
	if rows := r.of("retry-restart"); len(rows) > 0 {
		fmt.Fprintf(&b, "\n### 2b. Retry mix with an operator restart: the same %d jobs; the operator gets SIGKILL %s after the first create and is started again %s later, limits %s\n\n",
			s.RetryN, s.RestartAt, s.RestartDown, s.OtherLimits.Name)
		b.WriteString("Down is from the kill to the new operator's workers starting. The retries that fell due in that time are summarised apart; early retries count every retry.\n\n")
		t := newTable("Side", "Attempts", "Killed after s", "Down s", "Retries", "Retry lateness p50 / p99 / max ms", "Due while down: retries", "Due while down: lateness p50 / p99 / max ms", "Early retries", "Non-event writes/attempt", "Seconds", "Outcomes")
		for _, res := range rows {
			rs := res.Restart
			if res.Error != "" || rs == nil || res.Lateness == nil || rs.DueWhileDown == nil {
				t.row(res.Side, "error: "+res.Error)
				continue
			}
			l, d := res.Lateness, rs.DueWhileDown
			t.row(res.Side, fmt.Sprint(res.Attempts), f1(rs.KilledAfterSeconds), f1(rs.DownSeconds), fmt.Sprint(l.Count),
				fmt.Sprintf("%.0f / %.0f / %.0f", l.P50, l.P99, l.Max), fmt.Sprint(d.Count), fmt.Sprintf("%.0f / %.0f / %.0f", d.P50, d.P99, d.Max),
				earlyRetries(res), f2(res.PerAttempt.NonEventWrites()), f1(res.Seconds), outcomes(res))
		}
		b.WriteString(t.String())
	}
	if rows := r.of("scale"); len(rows) > 0 {
		fmt.Fprintf(&b, "\n### 3. Scale: cold start among %d finished jobs (and their Pods), limits %s\n\n", s.ScaleN, s.OtherLimits.Name)
		fmt.Fprintf(&b, "Writes and reads are counted from the restart until %s after the operator went idle.\n\n", SettledAfter)
		t := newTable("Side", "Fill: jobs/s", "Fill: peak RSS MiB", "Cold start: caches synced s", "Idle s", "Writes", "Reads", "RSS MiB at idle / +"+SettledAfter.String(), "Go heap MiB at idle / +"+SettledAfter.String(), "Peak RSS MiB", "CPU s")
		for _, res := range rows {
			if res.Error != "" {
				t.row(res.Side, "error: "+res.Error)
				continue
			}
			sc := res.Scale
			heap := mib(int64(sc.HeapBytes)) + " / " + mib(int64(sc.SettledHeapBytes))
			if sc.HeapScrapeError != "" {
				heap = "n/a"
			}
			t.row(res.Side, f1(res.JobsPerSecond), mib(sc.FillPeakRSS), f2(sc.SyncedSeconds), f2(sc.IdleSeconds),
				fmt.Sprintf("%.0f", sc.Writes), fmt.Sprintf("%.0f", sc.ColdStart.Breakdown.Reads), mib(sc.RSS)+" / "+mib(sc.SettledRSS), heap, mib(sc.PeakRSS), f2(sc.ColdStart.CPUSeconds["controller"]))
		}
		b.WriteString(t.String())
		for _, res := range rows {
			if res.Scale != nil && res.Scale.CacheCost != nil {
				c := res.Scale.CacheCost
				fmt.Fprintf(&b, "\nThe operator's caches, rebuilt in the harness with controllers.CacheOptions(): %.1f KiB of live heap per ExtractionJob (%.1f KiB as JSON), %.1f KiB per Pod (%.1f KiB as JSON); heap profile in %s.\n",
					c.HeapPerJob/1024, c.JSONPerJob/1024, c.HeapPerPod/1024, c.JSONPerPod/1024, filepath.Base(c.Profile))
			}
		}
	}
	if rows := r.of("latency"); len(rows) > 0 {
		fmt.Fprintf(&b, "\n### 4. Latency: steady arrivals for %s, create → first Pod seen by a watch, limits %s (ceiling: off)\n\n", s.RateDuration, s.OtherLimits.Name)
		t := newTable("Side", "Rate jobs/s", "Achieved", "Jobs", "p50 ms", "p99 ms", "max ms", "Non-event writes/job", "Events/job", "CPU s controller", "CPU s apiserver", "Outcomes")
		for _, res := range rows {
			if res.Error != "" {
				t.row(res.Side, fmt.Sprint(res.Rate), "error: "+res.Error)
				continue
			}
			l := res.StartLatency
			t.row(res.Side, fmt.Sprint(res.Rate), f1(res.AchievedRate), fmt.Sprint(res.Jobs), f0(l.P50), f0(l.P99), f0(l.Max),
				f2(res.PerJob.NonEventWrites()), f2(res.PerJob.Events), cpu(res, "controller"), cpu(res, "kube-apiserver"), outcomes(res))
		}
		b.WriteString(t.String())
	}
	b.WriteString(r.queueSection())
	b.WriteString(r.outageSection())
	if t := operatorViewTable(r.Results); t != nil {
		b.WriteString("\n#### The operator's own metrics: where its time went (quantiles are histogram bucket bounds)\n\n")
		b.WriteString(t.String())
	}
	for _, sc := range []string{"throughput", "retry-mix"} {
		if rows := r.of(sc); len(rows) > 0 {
			fmt.Fprintf(&b, "\n#### Requests per attempt by verb and resource, %s (the API server's counters minus the harness's own)\n\n", sc)
			b.WriteString(verbTable(rows).String())
		}
	}
	b.WriteString("\n### Targets\n\n")
	t := newTable("Target", "Measured", "Met")
	for _, c := range r.targets() {
		t.row(c.name, c.measured, c.verdict)
	}
	b.WriteString(t.String())
	return b.String()
}

// earlyRetries says how many retries started early, and how many the watch
// could not check.
func earlyRetries(res *Result) string {
	early := fmt.Sprint(res.EarlyRetries)
	if res.MissingPromises > 0 {
		early += fmt.Sprintf(" (%d retries without a seen promise)", res.MissingPromises)
	}
	return early
}

func operatorViewTable(results []*Result) *table {
	t := newTable("Scenario", "Limits", "Rate", "Reconciles/job", "Reconcile errors", "Reconcile mean / p99 ≤ ms", "Queue wait mean / p99 ≤ ms", "Own retry lateness p99 ≤ ms", "Own retries > 1 s late",
		"Admitted after waiting for a slot: jobs, mean / p99 ≤ s", "GC share of Go CPU", "Allocated KiB/job", "GC cycles")
	for _, res := range results {
		v := res.Operator
		if v == nil || res.Jobs == 0 {
			continue
		}
		rate := ""
		if res.Rate > 0 {
			rate = fmt.Sprint(res.Rate)
		}
		late, lateOver1s := "", ""
		if v.RetryLatenessP99Ms > 0 {
			late, lateOver1s = f0(v.RetryLatenessP99Ms), "not measured"
			if v.RetriesLaterThan1s != nil {
				lateOver1s = f0(*v.RetriesLaterThan1s)
			}
		}
		scenario, slotWait := res.Scenario, ""
		if q := res.Queue; q != nil {
			scenario += fmt.Sprintf(" %d, maxRunning %d", res.Jobs, q.MaxRunning)
		}
		gc, alloc, cycles := "", "", ""
		if v.GCCPUSeconds > 0 {
			gc = fmt.Sprintf("%.0f %%", 100*v.GCCPUSeconds/(v.GCCPUSeconds+v.UserCPUSeconds))
			alloc, cycles = f0(v.HeapAllocBytes/1024/float64(res.Jobs)), f0(v.GCCycles)
		}
		if v.AdmittedAfterWaiting > 0 {
			slotWait = fmt.Sprintf("%.0f, %.1f / %.0f", v.AdmittedAfterWaiting, v.SlotWaitMeanMs/1000, v.SlotWaitP99Ms/1000)
		}
		t.row(scenario, res.Limits.Name, rate, f2(v.Reconciles/float64(res.Jobs)), f0(v.ReconcileErrors),
			f1(v.ReconcileMeanMs)+" / "+f0(v.ReconcileP99Ms), f1(v.QueueWaitMeanMs)+" / "+f0(v.QueueWaitP99Ms), late, lateOver1s, slotWait, gc, alloc, cycles)
	}
	if len(t.rows) == 0 {
		return nil
	}
	return t
}

// verbTable shows each side's requests per attempt, one row per verb and resource.
func verbTable(rows []*Result) *table {
	header := []string{"Request"}
	keys := map[measure.RequestKey]bool{}
	var ok []*Result
	for _, res := range rows {
		if res.Error != "" || res.Attempts == 0 {
			continue
		}
		ok = append(ok, res)
		header = append(header, res.Side+" "+res.Limits.Name)
		for k := range res.Measurement.Requests {
			keys[k] = true
		}
	}
	sorted := make([]measure.RequestKey, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Slice(sorted, func(i, j int) bool {
		if measure.IsWrite(sorted[i]) != measure.IsWrite(sorted[j]) {
			return measure.IsWrite(sorted[i])
		}
		return sorted[i].String() < sorted[j].String()
	})
	t := newTable(header...)
	for _, k := range sorted {
		cells := []string{k.String()}
		shown := false
		for _, res := range ok {
			v := res.Measurement.Requests[k] / float64(res.Attempts)
			cells = append(cells, f2(v))
			shown = shown || f2(v) != "0.00" && f2(v) != "-0.00"
		}
		// A watch that a client reopened once in a run rounds to nothing per attempt.
		if shown {
			t.row(cells...)
		}
	}
	return t
}

type check struct{ name, measured, verdict string }

func verdict(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}

// targets checks the targets against what was measured.
func (r *Report) targets() []check {
	var out []check
	out = append(out, r.throughputTargets()...)
	for _, sc := range []string{"throughput", "retry-mix", "latency"} {
		for _, res := range r.of(sc) {
			if res.Side != "operator" || res.Error != "" {
				continue
			}
			where := fmt.Sprintf("%s, limits %s", sc, res.Limits.Name)
			if res.Rate > 0 {
				where += fmt.Sprintf(", %g jobs/s", res.Rate)
			}
			e := res.EventsPerTransition()
			out = append(out, check{"≤ 1 event per transition: attempt started, attempt failed, retry scheduled, job succeeded or failed (" + where + ")", fmt.Sprintf("%.3f", e), verdict(e <= 1)})
		}
	}
	out = append(out, r.latencyTargets()...)
	if op := r.find("retry-mix", "operator", ""); op != nil && op.Lateness != nil {
		out = append(out, check{"retry lateness p99 ≤ 100 ms and max ≤ 250 ms", fmt.Sprintf("p99 %.0f ms, max %.0f ms", op.Lateness.P99, op.Lateness.Max),
			verdict(op.Lateness.P99 <= 100 && op.Lateness.Max <= 250)})
		out = append(out, check{"0 early retries", fmt.Sprint(op.EarlyRetries), verdict(op.EarlyRetries == 0 && op.MissingPromises == 0)})
	}
	if op := r.find("retry-restart", "operator", ""); op != nil && op.Restart != nil {
		out = append(out, check{"0 early retries across an operator restart", earlyRetries(op), verdict(op.EarlyRetries == 0 && op.MissingPromises == 0)})
	}
	if op := r.find("scale", "operator", ""); op != nil {
		sc := op.Scale
		out = append(out, check{fmt.Sprintf("operator RSS ≤ 150 MiB with %d jobs", r.Settings.ScaleN),
			fmt.Sprintf("%s MiB at idle, %s MiB %s later, %s MiB peak after the restart, %s MiB peak while the jobs ran", mib(sc.RSS), mib(sc.SettledRSS), SettledAfter, mib(sc.PeakRSS), mib(sc.FillPeakRSS)),
			verdict(max(sc.PeakRSS, sc.FillPeakRSS) <= 150<<20)})
		out = append(out, check{"0 writes to finished jobs on a cold start", fmt.Sprintf("%.0f", op.Scale.Writes), verdict(op.Scale.Writes == 0)})
	}
	out = append(out, r.queueTargets()...)
	out = append(out, r.outageTargets()...)
	for _, res := range r.Results {
		if res.Error == "" && (res.WrongOutcomes > 0 || res.LabelMismatches > 0 || res.FailedDriverWrites > 0) {
			out = append(out, check{fmt.Sprintf("every job ends as planned (%s, %s, %s)", res.Scenario, res.Side, res.Limits.Name),
				fmt.Sprintf("%d wrong, %d label mismatches, %d refused kubelet writes", res.WrongOutcomes, res.LabelMismatches, res.FailedDriverWrites), verdict(false)})
		}
	}
	return out
}

// throughputTargets are scenario 1's: fewer requests per job than the Job
// controller at equal limits, and a cheaper job for kube-apiserver with
// limits off, each as a ratio measured in the same run.
func (r *Report) throughputTargets() []check {
	var out []check
	for _, l := range r.Settings.ThroughputLimits {
		op, jc := r.find("throughput", "operator", l.Name), r.find("throughput", "job-controller", l.Name)
		if op == nil || jc == nil || jc.JobsPerSecond == 0 {
			continue
		}
		want := 1.1
		if l.Name == "equal" {
			want = 1.2
			perJob := requestsPerJob(op)
			out = append(out, check{"≤ 5 requests per job (throughput, limits equal)",
				fmt.Sprintf("%.2f (the Job controller %.2f)", perJob, requestsPerJob(jc)), verdict(perJob <= 5)})
		}
		ratio := op.JobsPerSecond / jc.JobsPerSecond
		out = append(out, check{fmt.Sprintf("throughput ≥ %.1f× Job controller, limits %s", want, l.Name),
			fmt.Sprintf("%.2f× (%.1f against %.1f jobs/s)", ratio, op.JobsPerSecond, jc.JobsPerSecond), verdict(ratio >= want)})
		if l.Name == "off" {
			opCPU, jcCPU := apiServerCPUPerJob(op), apiServerCPUPerJob(jc)
			if jcCPU > 0 {
				out = append(out, check{"kube-apiserver CPU per job ≤ 0.9× the Job controller's (throughput, limits off)",
					fmt.Sprintf("%.2f× (%.1f against %.1f ms per job)", opCPU/jcCPU, opCPU, jcCPU), verdict(opCPU <= 0.9*jcCPU)})
			}
		}
		if ceil := r.find("throughput", "api-ceiling", ""); ceil != nil && ceil.JobsPerSecond > 0 {
			ratio := op.JobsPerSecond / ceil.JobsPerSecond
			out = append(out, check{"throughput ≥ 0.5× API ceiling, limits " + l.Name, fmt.Sprintf("%.2f×", ratio), verdict(ratio >= 0.5)})
		}
	}
	return out
}

// latencyTargets are scenario 4's: at the lower rate the operator's p99
// create → Pod is no worse than the Job controller's; at the higher rate it
// keeps up, its p50 no worse.
func (r *Report) latencyTargets() []check {
	var out []check
	rates := r.Settings.Rates
	for i, rate := range rates {
		op, jc := r.atRate("operator", rate), r.atRate("job-controller", rate)
		if op == nil || jc == nil || op.StartLatency == nil || jc.StartLatency == nil {
			continue
		}
		if i == 0 {
			out = append(out, check{fmt.Sprintf("create → Pod p99 ≤ the Job controller's at %g jobs/s", rate),
				fmt.Sprintf("%.0f against %.0f ms", op.StartLatency.P99, jc.StartLatency.P99), verdict(op.StartLatency.P99 <= jc.StartLatency.P99)})
			continue
		}
		out = append(out, check{fmt.Sprintf("create → Pod p50 ≤ the Job controller's at %g jobs/s", rate),
			fmt.Sprintf("%.0f against %.0f ms", op.StartLatency.P50, jc.StartLatency.P50), verdict(op.StartLatency.P50 <= jc.StartLatency.P50)})
	}
	return out
}

func (r *Report) atRate(side string, rate float64) *Result {
	for _, res := range r.of("latency") {
		if res.Side == side && res.Rate == rate && res.Error == "" {
			return res
		}
	}
	return nil
}

// requestsPerJob counts every request a side sent per job: writes, events
// and reads.
func requestsPerJob(res *Result) float64 {
	b := res.PerJob
	return b.PodWrites + b.StatusWrites + b.Events + b.OtherWrites + b.Reads
}

// apiServerCPUPerJob is kube-apiserver's CPU in milliseconds per job. It
// includes the simulated kubelet's requests, which are the same on both sides.
func apiServerCPUPerJob(res *Result) float64 {
	if res.Jobs == 0 {
		return 0
	}
	return res.Measurement.CPUSeconds["kube-apiserver"] * 1000 / float64(res.Jobs)
}

func outcomes(res *Result) string {
	s := fmt.Sprintf("%d ok / %d failed", res.Succeeded, res.Failed)
	if res.WrongOutcomes > 0 {
		s += fmt.Sprintf(", **%d not as planned**", res.WrongOutcomes)
	}
	return s
}

func cpu(res *Result, name string) string {
	v, ok := res.Measurement.CPUSeconds[name]
	if !ok {
		return "in harness"
	}
	return f1(v)
}

func f0(v float64) string { return fmt.Sprintf("%.0f", v) }
func f1(v float64) string { return fmt.Sprintf("%.1f", v) }
func f2(v float64) string { return fmt.Sprintf("%.2f", v) }
func mib(b int64) string  { return fmt.Sprintf("%.0f", float64(b)/(1<<20)) }

// table is a Markdown table.
type table struct {
	header []string
	rows   [][]string
}

func newTable(header ...string) *table { return &table{header: header} }
func (t *table) row(cells ...string)   { t.rows = append(t.rows, cells) }

func (t *table) String() string {
	var b bytes.Buffer
	line := func(cells []string) {
		b.WriteString("|")
		for i := range t.header {
			cell := ""
			if i < len(cells) {
				cell = cells[i]
			}
			b.WriteString(" " + cell + " |")
		}
		b.WriteString("\n")
	}
	line(t.header)
	sep := make([]string, len(t.header))
	for i := range sep {
		sep[i] = "---"
	}
	line(sep)
	for _, r := range t.rows {
		line(r)
	}
	return b.String()
}
