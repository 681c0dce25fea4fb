package controllers

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
)

func defaultBackoff() ejv1.Backoff {
	return ejv1.Backoff{
		Base:          metav1.Duration{Duration: 30 * time.Second},
		Multiplier:    4,
		Max:           metav1.Duration{Duration: time.Hour},
		JitterPercent: ptr.To[int32](25),
	}
}

func TestRetryDelay(t *testing.T) {
	tenfold := ejv1.Backoff{
		Base: metav1.Duration{Duration: 24 * time.Hour}, Multiplier: 10,
		Max: metav1.Duration{Duration: 168 * time.Hour}, JitterPercent: ptr.To[int32](100),
	}
	cases := []struct {
		name    string
		backoff ejv1.Backoff
		retry   int32
		jitter  float64
		want    time.Duration
	}{
		{"the first retry waits the base", defaultBackoff(), 1, 0, 30 * time.Second},
		{"the second retry waits base times multiplier", defaultBackoff(), 2, 0, 120 * time.Second},
		{"the third retry waits base times multiplier squared", defaultBackoff(), 3, 0, 480 * time.Second},
		{"the delay stops growing at max", defaultBackoff(), 5, 0, time.Hour},
		{"full jitter adds jitterPercent of the delay", defaultBackoff(), 1, 1, 37*time.Second + 500*time.Millisecond},
		{"half jitter adds half of jitterPercent", defaultBackoff(), 2, 0.5, 135 * time.Second},
		{"jitter applies on top of the cap", defaultBackoff(), 9, 1, 75 * time.Minute},
		{"jitter outside [0,1] is clamped", defaultBackoff(), 1, 7, 37*time.Second + 500*time.Millisecond},
		{"negative jitter is clamped to none", defaultBackoff(), 1, -3, 30 * time.Second},
		{"the largest values never overflow", tenfold, 10, 1, 2 * 168 * time.Hour},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := retryDelay(tc.backoff, tc.retry, tc.jitter); got != tc.want {
				t.Errorf("retryDelay(retry %d, jitter %v) = %v, want %v", tc.retry, tc.jitter, got, tc.want)
			}
		})
	}
}

func TestJitterStaysWithinBounds(t *testing.T) {
	b := defaultBackoff()
	for retry := int32(1); retry <= 10; retry++ {
		low, high := retryDelay(b, retry, 0), retryDelay(b, retry, 0.999999)
		if high < low || high > low+low/4 {
			t.Errorf("retry %d: delay with jitter %v is outside [%v, %v]", retry, high, low, low+low/4)
		}
	}
}

func TestDisruptionDelayDoesNotGrow(t *testing.T) {
	if got := disruptionDelay(defaultBackoff(), 0); got != 30*time.Second {
		t.Errorf("disruptionDelay = %v, want the base 30s", got)
	}
	small := defaultBackoff()
	small.Max = metav1.Duration{Duration: 10 * time.Second}
	if got := disruptionDelay(small, 0); got != 10*time.Second {
		t.Errorf("disruptionDelay with max below base = %v, want max 10s", got)
	}
}

func TestRetryTimeIsNeverEarlierThanTheDelay(t *testing.T) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 400_000_000, time.UTC)
	cases := []struct {
		name  string
		delay time.Duration
		want  time.Time
	}{
		{"a fractional time rounds up to the next second", 30 * time.Second, time.Date(2026, 11, 28, 12, 0, 31, 0, time.UTC)},
		{"a whole second stays as it is", 600 * time.Millisecond, time.Date(2026, 11, 28, 12, 0, 1, 0, time.UTC)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := retryTime(now, tc.delay)
			if !got.Time.Equal(tc.want) {
				t.Errorf("retryTime = %v, want %v", got.Time, tc.want)
			}
			if got.Time.Before(now.Add(tc.delay)) {
				t.Errorf("retryTime %v is before now+delay %v", got.Time, now.Add(tc.delay))
			}
		})
	}
}

func TestWakeUpFromNowSubtractsTheReconcilesOwnTime(t *testing.T) {
	priority := ptr.To(10)
	cases := []struct {
		name    string
		result  ctrl.Result
		elapsed time.Duration
		want    ctrl.Result
	}{
		{"a wake-up is counted from the end of the reconcile",
			ctrl.Result{RequeueAfter: 30 * time.Second, Priority: priority}, 250 * time.Millisecond,
			ctrl.Result{RequeueAfter: 30*time.Second - 250*time.Millisecond, Priority: priority}},
		{"a wake-up that fell due during the reconcile comes at once, not never",
			ctrl.Result{RequeueAfter: time.Second}, 2 * time.Second, ctrl.Result{RequeueAfter: time.Nanosecond}},
		{"no wake-up stays none",
			ctrl.Result{}, time.Second, ctrl.Result{}},
		{"a reconcile that took no time changes nothing",
			ctrl.Result{RequeueAfter: time.Minute}, 0, ctrl.Result{RequeueAfter: time.Minute}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := wakeUpFromNow(tc.result, tc.elapsed); got.RequeueAfter != tc.want.RequeueAfter || got.Priority != tc.want.Priority {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}
