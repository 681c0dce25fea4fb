package measure

import (
	"testing"
	"time"
)

func ms(v ...int) []time.Duration {
	out := make([]time.Duration, len(v))
	for i, x := range v {
		out[i] = time.Duration(x) * time.Millisecond
	}
	return out
}

func TestPercentile(t *testing.T) {
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond
	}
	cases := []struct {
		samples []time.Duration
		p       float64
		want    time.Duration
	}{
		{nil, 50, 0},
		{ms(7), 99, 7 * time.Millisecond},
		{hundred, 50, 50 * time.Millisecond},
		{hundred, 99, 99 * time.Millisecond},
		{hundred, 100, 100 * time.Millisecond},
		{hundred, 0, 1 * time.Millisecond},
		{ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{ms(1, 2, 3, 4), 51, 3 * time.Millisecond},
	}
	for _, c := range cases {
		if got := percentile(c.samples, c.p); got != c.want {
			t.Errorf("p%g of %d samples = %s, want %s", c.p, len(c.samples), got, c.want)
		}
	}
}

func TestSummarize(t *testing.T) {
	s := Summarize(ms(30, -5, 10, 20))
	if s.Count != 4 || s.Min != -5 || s.Max != 30 || s.P50 != 10 || s.P99 != 30 {
		t.Errorf("got %+v", s)
	}
	if (Summarize(nil) != Summary{}) {
		t.Error("no samples, no summary")
	}
}

func TestHistogram(t *testing.T) {
	got := Histogram(ms(-3, 0, 9, 10, 25, 1000), 0, 10*time.Millisecond, 3)
	want := []int{3, 1, 2} // -3 clamps into the first bucket, 1000 into the last
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
}
