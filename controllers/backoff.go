package controllers

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
)

// retryDelay is the wait before counted retry n (1-based):
// base × multiplier^(n−1), capped at max, plus jitter × jitterPercent % of
// that, where jitter is drawn from [0, 1).
func retryDelay(b ejv1.Backoff, retry int32, jitter float64) time.Duration {
	delay := b.Base.Duration
	for i := int32(1); i < retry && delay < b.Max.Duration; i++ {
		delay *= time.Duration(b.Multiplier)
	}
	return withJitter(min(delay, b.Max.Duration), ptr.Deref(b.JitterPercent, 0), jitter)
}

// disruptionDelay is the wait before retrying a disruption: base, without
// growth, so a drained node's jobs come back quickly but never in a hot loop.
func disruptionDelay(b ejv1.Backoff, jitter float64) time.Duration {
	return withJitter(min(b.Base.Duration, b.Max.Duration), ptr.Deref(b.JitterPercent, 0), jitter)
}

func withJitter(delay time.Duration, percent int32, jitter float64) time.Duration {
	jitter = min(max(jitter, 0), 1)
	return delay + time.Duration(float64(delay)*float64(percent)/100*jitter)
}

// retryTime is when a retry may start: now plus the delay, rounded up to the
// next whole second, because the API stores whole seconds and a retry must
// never start before the time the job shows.
func retryTime(now time.Time, delay time.Duration) metav1.Time {
	at := now.Add(delay)
	if rounded := at.Truncate(time.Second); rounded.Before(at) {
		at = rounded.Add(time.Second)
	}
	return metav1.NewTime(at)
}

// wakeUpFromNow turns a wake-up that the reconcile computed from its start
// into one counted from now. The work queue starts counting when Reconcile
// returns, after the writes; counted from the start, a due retry would begin
// as much later as the writes took.
func wakeUpFromNow(result ctrl.Result, elapsed time.Duration) ctrl.Result {
	if result.RequeueAfter > 0 {
		result.RequeueAfter = max(result.RequeueAfter-elapsed, time.Nanosecond)
	}
	return result
}
