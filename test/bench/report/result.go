package report

import (
	"fmt"
	"strings"
	"time"

	"github.com/pybase/extraction-operator/test/bench/config"
	"github.com/pybase/extraction-operator/test/bench/measure"
)

// Result is one side's figures in one scenario; fields that a scenario
// does not measure stay empty.
type Result struct {
	Scenario string        `json:"scenario"`
	Side     string        `json:"side"`
	Limits   config.Limits `json:"limits"`
	Error    string        `json:"error,omitempty"`

	Jobs          int     `json:"jobs"`
	Attempts      int     `json:"attempts"`
	Seconds       float64 `json:"seconds"` // first create → last terminal status
	JobsPerSecond float64 `json:"jobsPerSecond"`
	Succeeded     int     `json:"succeeded"`
	Failed        int     `json:"failed"`
	// WrongOutcomes counts jobs whose end or number of attempts differs from their plan.
	WrongOutcomes int `json:"wrongOutcomes"`
	// LabelMismatches counts Pods whose attempt label disagrees with the
	// order the watch saw them in (operator only).
	LabelMismatches int64 `json:"labelMismatches"`
	// FailedDriverWrites counts fake-kubelet writes the API server refused.
	FailedDriverWrites int64 `json:"failedDriverWrites"`

	PerJob     measure.Breakdown `json:"perJob"`
	PerAttempt measure.Breakdown `json:"perAttempt"`

	// Operator is the operator's own metrics at the end of the run.
	Operator *measure.OperatorView `json:"operatorMetrics,omitempty"`

	// Scenario 2 (operator only). With a restart, Lateness and LatenessMs
	// leave out the retries that fell due while the operator was down;
	// EarlyRetries counts every retry.
	Lateness        *measure.Summary `json:"lateness,omitempty"`
	LatenessMs      []float64        `json:"latenessMs,omitempty"`
	EarlyRetries    int              `json:"earlyRetries"`
	MissingPromises int              `json:"missingPromises,omitempty"`
	// Restart is scenario 2's variant with an operator restart in the middle.
	Restart *RestartResult `json:"restart,omitempty"`

	// Scenario 4.
	Rate         float64          `json:"rate,omitempty"`
	AchievedRate float64          `json:"achievedRate,omitempty"`
	StartLatency *measure.Summary `json:"startLatency,omitempty"`

	// Scenario 3.
	Scale *ScaleResult `json:"scale,omitempty"`

	// Scenario 5 (operator only).
	Queue *QueueResult `json:"queue,omitempty"`

	// Scenario 6 (operator only).
	Outage *OutageResult `json:"outage,omitempty"`

	Measurement measure.Measurement `json:"measurement"`
}

// ScaleResult is scenario 3: a cold start among many finished jobs.
type ScaleResult struct {
	FillSeconds   float64 `json:"fillSeconds"`
	FillPeakRSS   int64   `json:"fillPeakRssBytes"`
	SyncedSeconds float64 `json:"syncedSeconds"` // process start → caches synced
	IdleSeconds   float64 `json:"idleSeconds"`   // process start → idle
	RSS           int64   `json:"rssBytes"`
	PeakRSS       int64   `json:"peakRssBytes"`
	HeapBytes     float64 `json:"heapAllocBytes"`
	// SettledRSS and SettledHeapBytes are read SettledAfter the process went idle.
	SettledRSS       int64               `json:"settledRssBytes"`
	SettledHeapBytes float64             `json:"settledHeapAllocBytes"`
	Writes           float64             `json:"writes"` // every write during the cold start, events included
	ColdStart        measure.Measurement `json:"coldStart"`
	HeapScrapeError  string              `json:"heapScrapeError,omitempty"`
	// CacheCost, for the operator, splits its cache memory by object type.
	CacheCost *measure.CacheCost `json:"cacheCost,omitempty"`
}

// RestartResult is the restart in the middle of scenario 2's variant.
type RestartResult struct {
	// Killed is when the operator got SIGKILL; Ready when the new one
	// logged that its workers started.
	Killed             time.Time `json:"killed"`
	Ready              time.Time `json:"ready"`
	KilledAfterSeconds float64   `json:"killedAfterSeconds"` // first create → kill
	DownSeconds        float64   `json:"downSeconds"`        // kill → workers started
	// DueWhileDown is the lateness of the retries that fell due between the
	// kill and the new operator's start.
	DueWhileDown *measure.Summary `json:"dueWhileDown,omitempty"`
}

// QueueResult is scenario 5: jobs behind an ExtractorClass's maxRunning.
type QueueResult struct {
	MaxRunning int     `json:"maxRunning"` // 0: the uncapped comparison
	RunSeconds float64 `json:"runSeconds"` // each attempt's run time
	// PeakInFlight is the most Pods of the class created and not finished
	// at once, in the harness's watch.
	PeakInFlight int `json:"peakInFlight"`
	// SlotTaken is, for each slot freed while the class was full and a job
	// had not started, the time from the watch seeing a Pod finish to it
	// seeing the next Pod of the class created.
	SlotTaken *measure.Summary `json:"slotTaken,omitempty"`
	// Waited counts the jobs the watch saw in phase Queued.
	Waited int `json:"waited"`
	// Paths counts the jobs by the states their watch events showed, in
	// order (phase/Ready reason): where a job's writes went.
	Paths map[string]int `json:"paths"`
	// RSS and PeakRSS are the operator's, when the last job finished.
	RSS     int64 `json:"rssBytes"`
	PeakRSS int64 `json:"peakRssBytes"`
}

// SettledAfter is how long after going idle memory is read a second time:
// past the Go runtime's forced collection every 2 minutes.
const SettledAfter = 130 * time.Second

// IsOperator tells the operator, run as a process or in the harness, from the
// Job controller and the ceiling: only the operator promises retry times.
func IsOperator(side string) bool { return strings.HasPrefix(side, "operator") }

// EventsPerTransition divides the events by the transitions that the API
// contract announces with one event each: every attempt starts; a failed
// attempt fails and then either schedules a retry or fails the job; a
// succeeded attempt succeeds the job. That is 3 per attempt, less 1 per
// succeeded job. More than 1 means some transition had more than one event.
func (res *Result) EventsPerTransition() float64 {
	transitions := 3*res.Attempts - res.Succeeded
	if transitions <= 0 {
		return 0
	}
	return res.Measurement.Breakdown.Events / float64(transitions)
}

// OneLine summarises a result for the progress log.
func (res *Result) OneLine() string {
	if res.Error != "" {
		return fmt.Sprintf("%s %s %s: error: %s", res.Scenario, res.Side, res.Limits.Name, res.Error)
	}
	return fmt.Sprintf("%s %s %s: %d jobs, %d attempts, %.1f jobs/s; per attempt: %.2f pod, %.2f status, %.2f other writes, %.2f events, %.2f reads; CPU %v",
		res.Scenario, res.Side, res.Limits.Name, res.Jobs, res.Attempts, res.JobsPerSecond,
		res.PerAttempt.PodWrites, res.PerAttempt.StatusWrites, res.PerAttempt.OtherWrites, res.PerAttempt.Events, res.PerAttempt.Reads, res.Measurement.CPUSeconds)
}
