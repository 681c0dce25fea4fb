package measure

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"

	dto "github.com/prometheus/client_model/go"
)

// OperatorView is what the operator's own metrics say about a run, to tell
// time spent waiting in its work queue from time spent in reconciles (that
// is, mostly waiting for the API server). Quantiles are bucket upper bounds.
type OperatorView struct {
	Reconciles      float64 `json:"reconciles"`
	ReconcileErrors float64 `json:"reconcileErrors"`
	ReconcileMeanMs float64 `json:"reconcileMeanMs"`
	ReconcileP99Ms  float64 `json:"reconcileP99MsAtMost"`
	QueueWaitMeanMs float64 `json:"queueWaitMeanMs"`
	QueueWaitP99Ms  float64 `json:"queueWaitP99MsAtMost"`
	// RetryLatenessP99Ms is the operator's own extractionjob_retry_lateness_seconds:
	// Pod create call minus nextRetryAt, by the operator's clock.
	RetryLatenessP99Ms float64 `json:"retryLatenessP99MsAtMost"`
	// RetriesLaterThan1s counts the retries the operator itself started
	// more than a second after their nextRetryAt; nil in a bench.json
	// written before it was measured.
	RetriesLaterThan1s *float64 `json:"retriesLaterThan1s,omitempty"`
	// AdmittedAfterWaiting counts the jobs the operator admitted after they
	// waited in an ExtractorClass's queue (extractionjob_queue_wait_seconds),
	// and SlotWaitMeanMs and SlotWaitP99Ms are how long they waited.
	AdmittedAfterWaiting float64 `json:"admittedAfterWaiting,omitempty"`
	SlotWaitMeanMs       float64 `json:"slotWaitMeanMs,omitempty"`
	SlotWaitP99Ms        float64 `json:"slotWaitP99MsAtMost,omitempty"`
	// GCCPUSeconds and UserCPUSeconds are the Go runtime's estimates of the
	// CPU time its collector and the program took since the process
	// started (go_cpu_classes_*): wall time the Ps spent, which counts time
	// the kernel ran something else, so only their ratio is compared.
	// HeapAllocBytes is every byte the program allocated (go_gc_heap_allocs_bytes_total)
	// and GCCycles the collections.
	GCCPUSeconds   float64 `json:"gcCpuSeconds,omitempty"`
	UserCPUSeconds float64 `json:"userCpuSeconds,omitempty"`
	HeapAllocBytes float64 `json:"heapAllocBytesTotal,omitempty"`
	GCCycles       float64 `json:"gcCycles,omitempty"`
}

// ScrapeOperatorView reads the metrics of the named controller.
func ScrapeOperatorView(ctx context.Context, url, controller string) (*OperatorView, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	families, err := ParseFamilies(resp.Body)
	if err != nil {
		return nil, err
	}
	return operatorView(families, controller)
}

// ScrapeGauge reads one unlabelled gauge from a Prometheus endpoint.
func ScrapeGauge(ctx context.Context, c *http.Client, url, name string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return 0, fmt.Errorf("GET %s: %s: %s", url, resp.Status, body)
	}
	families, err := ParseFamilies(resp.Body)
	if err != nil {
		return 0, err
	}
	f, ok := families[name]
	if !ok || len(f.GetMetric()) == 0 {
		return 0, fmt.Errorf("%s has no %s", url, name)
	}
	m := f.GetMetric()[0]
	if g := m.GetGauge(); g != nil {
		return g.GetValue(), nil
	}
	return m.GetUntyped().GetValue(), nil
}

func operatorView(families map[string]*dto.MetricFamily, controller string) (*OperatorView, error) {
	ours := func(m *dto.Metric) bool {
		for _, l := range m.GetLabel() {
			if (l.GetName() == "controller" || l.GetName() == "name") && l.GetValue() == controller {
				return true
			}
		}
		return false
	}
	v := &OperatorView{}
	for _, m := range families["controller_runtime_reconcile_total"].GetMetric() {
		if !ours(m) {
			continue
		}
		v.Reconciles += m.GetCounter().GetValue()
		for _, l := range m.GetLabel() {
			if l.GetName() == "result" && l.GetValue() == "error" {
				v.ReconcileErrors += m.GetCounter().GetValue()
			}
		}
	}
	hist := func(name string, filter bool) *dto.Histogram {
		for _, m := range families[name].GetMetric() {
			if !filter || ours(m) {
				return m.GetHistogram()
			}
		}
		return nil
	}
	h := hist("controller_runtime_reconcile_time_seconds", true)
	if h == nil {
		return nil, fmt.Errorf("the operator exports no controller_runtime_reconcile_time_seconds")
	}
	v.ReconcileMeanMs, v.ReconcileP99Ms = histMean(h)*1000, histQuantile(h, 0.99)*1000
	if h := hist("workqueue_queue_duration_seconds", true); h != nil {
		v.QueueWaitMeanMs, v.QueueWaitP99Ms = histMean(h)*1000, histQuantile(h, 0.99)*1000
	}
	if h := hist("extractionjob_retry_lateness_seconds", false); h != nil {
		v.RetryLatenessP99Ms = histQuantile(h, 0.99) * 1000
		later := float64(h.GetSampleCount()) - histCount(h, 1)
		v.RetriesLaterThan1s = &later
	}
	counter := func(name string) float64 {
		for _, m := range families[name].GetMetric() {
			return m.GetCounter().GetValue() + m.GetUntyped().GetValue()
		}
		return 0
	}
	v.GCCPUSeconds, v.UserCPUSeconds = counter("go_cpu_classes_gc_total_cpu_seconds_total"), counter("go_cpu_classes_user_cpu_seconds_total")
	v.HeapAllocBytes, v.GCCycles = counter("go_gc_heap_allocs_bytes_total"), counter("go_gc_cycles_total_gc_cycles_total")
	if h := hist("extractionjob_queue_wait_seconds", false); h != nil {
		v.AdmittedAfterWaiting = float64(h.GetSampleCount())
		v.SlotWaitMeanMs, v.SlotWaitP99Ms = histMean(h)*1000, histQuantile(h, 0.99)*1000
	}
	return v, nil
}

func histMean(h *dto.Histogram) float64 {
	if h.GetSampleCount() == 0 {
		return 0
	}
	return h.GetSampleSum() / float64(h.GetSampleCount())
}

// histCount is the number of samples at most bound, which must be a bucket bound.
func histCount(h *dto.Histogram, bound float64) float64 {
	for _, b := range h.GetBucket() {
		if b.GetUpperBound() == bound {
			return float64(b.GetCumulativeCount())
		}
	}
	return math.NaN()
}

// histQuantile is the upper bound of the first bucket that holds the q
// quantile: the quantile is at most that. Beyond the last bound it is +Inf.
func histQuantile(h *dto.Histogram, q float64) float64 {
	count := h.GetSampleCount()
	if count == 0 {
		return 0
	}
	want := q * float64(count)
	for _, b := range h.GetBucket() {
		if float64(b.GetCumulativeCount()) >= want {
			return b.GetUpperBound()
		}
	}
	return math.Inf(1)
}
