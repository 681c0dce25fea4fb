// Package measure counts and reads what the benchmark measures: API
// requests, by the API server's counters and by the harness's own clients;
// CPU time and memory of processes; the operator's own metrics; the cost of
// its caches; and summaries of durations.
package measure

// Measurement is what one window measured.
type Measurement struct {
	Seconds float64 `json:"seconds"`
	// Requests are the side's: the API server's counters minus the
	// harness's own requests (job creates, watches, fake kubelet).
	Requests  Counts    `json:"requests"`
	Breakdown Breakdown `json:"breakdown"`
	// Subtracted are the harness's requests that were taken out.
	Subtracted Counts `json:"subtracted"`
	// Background are requests outside Pods, jobs and events (the API
	// server's own leases and bookkeeping); they are not charged to the side.
	Background Counts `json:"background"`
	// Refused lists the side's requests that the API server refused, such
	// as 409 Conflicts of writes based on a stale cache (the fake kubelet's
	// writes are never refused, see FailedDriverWrites); they are included
	// in Requests.
	Refused          Counts    `json:"refused"`
	RefusedWrites    float64   `json:"refusedWrites"`
	RefusedBreakdown Breakdown `json:"refusedBreakdown"`
	// CeilingCheck, for the in-harness ceiling driver, lists the difference
	// between what the server counted and what the driver's client counted;
	// it shows the subtraction is exact.
	CeilingCheck Counts             `json:"ceilingCheck,omitempty"`
	CPUSeconds   map[string]float64 `json:"cpuSeconds"`
}
