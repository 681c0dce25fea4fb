package measure

import (
	"math"
	"slices"
	"time"
)

// percentile is the nearest-rank percentile of the samples: the smallest
// sample that at least p % of the samples do not exceed. Nearest rank never
// invents a value between two samples, so p100 is the maximum and a p99 of
// 100 samples is the second largest.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// Summary describes a set of durations, in milliseconds for the JSON.
type Summary struct {
	Count int     `json:"count"`
	P50   float64 `json:"p50Ms"`
	P99   float64 `json:"p99Ms"`
	Max   float64 `json:"maxMs"`
	Min   float64 `json:"minMs"`
}

// Summarize gives the count, median, p99 and extremes of the samples.
func Summarize(samples []time.Duration) Summary {
	if len(samples) == 0 {
		return Summary{}
	}
	sorted := slices.Clone(samples)
	slices.Sort(sorted)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	return Summary{
		Count: len(sorted),
		P50:   ms(percentile(sorted, 50)),
		P99:   ms(percentile(sorted, 99)),
		Max:   ms(sorted[len(sorted)-1]),
		Min:   ms(sorted[0]),
	}
}

// Histogram counts samples into buckets of the given width starting at lo;
// samples outside [lo, lo+width·n) land in the first or last bucket, so none
// disappears from a chart.
func Histogram(samples []time.Duration, lo, width time.Duration, n int) []int {
	buckets := make([]int, n)
	for _, s := range samples {
		i := int((s - lo) / width)
		if s < lo {
			i = 0
		}
		buckets[min(max(i, 0), n-1)]++
	}
	return buckets
}
