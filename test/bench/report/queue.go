package report

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
)

// writesPerJob counts every write of a job, events included: the queue's
// target allows one more write of any kind per job that waited.
func writesPerJob(res *Result) float64 { return res.PerJob.NonEventWrites() + res.PerJob.Events }

// controllerCPUPerJob is the controller's CPU time per job, in milliseconds.
func controllerCPUPerJob(res *Result) float64 {
	return res.Measurement.CPUSeconds["controller"] * 1000 / float64(res.Jobs)
}

// queueSection renders scenario 5.
func (r *Report) queueSection() string {
	rows := r.of("queue")
	if len(rows) == 0 {
		return ""
	}
	s := r.Settings
	head := fmt.Sprintf("\n### 5. Queue: jobs behind an ExtractorClass's maxRunning %d, each attempt running %s, limits %s (operator only: a batch/v1 Job has no cap across Jobs)\n\n",
		s.QueueMaxRunning, s.QueueRunTime, s.OtherLimits.Name)
	head += "In flight: Pods of the class created and not finished, in the harness's Pod watch. Slot freed → next Pod: the watch seeing a Pod of the class finish while the class was full and a job had not started, to it seeing the next Pod of the class created.\n\n"
	t := newTable("Jobs", "maxRunning", "Jobs/s", "Seconds", "Peak in flight", "Jobs seen Queued", "Slot freed → next Pod p50 / p99 / max ms (slots)",
		"Writes/job", "Status writes/job", "Pod writes/job", "Events/job", "CPU s controller", "CPU ms/job", "RSS MiB end / peak", "Outcomes")
	for _, res := range rows {
		q := res.Queue
		capped := "none"
		if q.MaxRunning > 0 {
			capped = fmt.Sprint(q.MaxRunning)
		}
		if res.Error != "" {
			t.row("", capped, "error: "+res.Error)
			continue
		}
		taken := "n/a"
		if l := q.SlotTaken; l != nil && l.Count > 0 {
			taken = fmt.Sprintf("%.0f / %.0f / %.0f (%d)", l.P50, l.P99, l.Max, l.Count)
		}
		t.row(fmt.Sprint(res.Jobs), capped, f1(res.JobsPerSecond), f1(res.Seconds), fmt.Sprint(q.PeakInFlight), fmt.Sprint(q.Waited), taken,
			f2(writesPerJob(res)), f2(res.PerJob.StatusWrites), f2(res.PerJob.PodWrites), f2(res.PerJob.Events),
			cpu(res, "controller"), f2(controllerCPUPerJob(res)), mib(q.RSS)+" / "+mib(q.PeakRSS), outcomes(res))
	}
	return head + t.String() + pathsTable(rows)
}

// shownPaths is how many of a run's commonest job paths the table shows.
const shownPaths = 4

// pathsTable shows where the jobs' writes went: each run's commonest
// sequences of states in the jobs' watch events.
func pathsTable(rows []*Result) string {
	t := newTable("Jobs", "maxRunning", "Jobs", "States in the job's watch events (phase/Ready reason), from the create on")
	for _, res := range rows {
		q := res.Queue
		if res.Error != "" || len(q.Paths) == 0 {
			continue
		}
		paths := slices.Collect(maps.Keys(q.Paths))
		slices.SortFunc(paths, func(a, b string) int { return cmp.Or(q.Paths[b]-q.Paths[a], strings.Compare(a, b)) })
		for _, path := range paths[:min(shownPaths, len(paths))] {
			t.row(fmt.Sprint(res.Jobs), fmt.Sprint(q.MaxRunning), fmt.Sprint(q.Paths[path]), path)
		}
	}
	if len(t.rows) == 0 {
		return ""
	}
	return fmt.Sprintf("\nWhere the writes went: each run's %d commonest paths; every event after the first is one write.\n\n", shownPaths) + t.String()
}

// queueTargets checks scenario 5 against the targets.
func (r *Report) queueTargets() []check {
	var out []check
	var capped, uncapped []*Result
	for _, res := range r.of("queue") {
		switch {
		case res.Error != "":
		case res.Queue.MaxRunning > 0:
			capped = append(capped, res)
		default:
			uncapped = append(uncapped, res)
		}
	}
	for _, res := range capped {
		q := res.Queue
		where := fmt.Sprintf("%d jobs, maxRunning %d", res.Jobs, q.MaxRunning)
		out = append(out, check{"peak in flight ≤ maxRunning (" + where + ")", fmt.Sprint(q.PeakInFlight), verdict(q.PeakInFlight <= q.MaxRunning)})
		if l := q.SlotTaken; l != nil && l.Count > 0 {
			out = append(out, check{"slot freed → next Pod created p99 ≤ 100 ms (" + where + ")",
				fmt.Sprintf("p50 %.0f ms, p99 %.0f ms over %d slots", l.P50, l.P99, l.Count), verdict(l.P99 <= 100)})
		}
		if base := comparisonFor(res, uncapped); base != nil {
			extra := writesPerJob(res) - writesPerJob(base)
			allowed := float64(q.Waited) / float64(res.Jobs)
			out = append(out, check{"≤ 1 more write per job than uncapped, only for jobs that waited (" + where + ")",
				fmt.Sprintf("%+.3f writes/job against %d uncapped jobs (%.3f → %.3f); %d of %d jobs waited, so ≤ %+.3f allowed", extra, base.Jobs, writesPerJob(base), writesPerJob(res), q.Waited, res.Jobs, allowed),
				verdict(extra <= allowed+1e-9)}) // per-job figures are quotients of whole writes
		}
		if q.Waited > 0 {
			writes := queuedWrites(q.Paths)
			out = append(out, check{"writes while Queued per job that waited, from the jobs' watch events (" + where + ")",
				fmt.Sprintf("%.3f (%d writes for %d jobs)", float64(writes)/float64(q.Waited), writes, q.Waited), verdict(writes <= q.Waited)})
		}
	}
	if len(capped) > 1 {
		small, large := capped[0], capped[0]
		for _, res := range capped {
			if res.Jobs < small.Jobs {
				small = res
			}
			if res.Jobs > large.Jobs {
				large = res
			}
		}
		if a, b := controllerCPUPerJob(small), controllerCPUPerJob(large); a > 0 && b > 0 {
			ratio := max(a, b) / min(a, b)
			out = append(out, check{fmt.Sprintf("operator CPU per job within 1.2× at %d and %d queued", small.Jobs, large.Jobs),
				fmt.Sprintf("%.2f ms and %.2f ms: %.2f×", a, b, ratio), verdict(ratio <= 1.2)})
		}
	}
	return out
}

// queuedWrites counts the watch events, that is writes, that showed a job Queued.
func queuedWrites(paths map[string]int) int {
	n := 0
	for path, jobs := range paths {
		for _, step := range strings.Split(path, " → ") {
			if strings.HasPrefix(step, string(ejv1.PhaseQueued)+"/") {
				n += jobs
			}
		}
	}
	return n
}

// comparisonFor is the uncapped run of the same number of jobs as res, or
// else the largest uncapped run.
func comparisonFor(res *Result, uncapped []*Result) *Result {
	var best *Result
	for _, u := range uncapped {
		if u.Jobs == res.Jobs {
			return u
		}
		if best == nil || u.Jobs > best.Jobs {
			best = u
		}
	}
	return best
}
