package controllers

import (
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/util/duration"
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

// Where a retry's wait came from: the backoff-delay histogram's source label.
const (
	delaySourcePolicy = "policy"
	delaySourceHint   = "hint"
)

// Why a Retry-After hint was not followed as asked: the ignored-hints
// counter's reason label.
const (
	hintUnparsable = "unparsable"
	hintCapped     = "capped"
	hintByPolicy   = "policy"
)

// retryWait is the wait before a retry and what decided it.
type retryWait struct {
	Delay time.Duration
	// Source is delaySourcePolicy or delaySourceHint.
	Source string
	// Hint is the wait the service asked for, 0 for none.
	Hint time.Duration
	// Ignored is why the hint was not followed as asked: hintCapped or
	// hintByPolicy; "" when it was, or when there was none.
	Ignored string
	// Cap is the maxRetryAfter that applied to the hint.
	Cap time.Duration
}

// honourRetryAfter is the wait before a retry once the service's hint is
// heard. policyDelay is the policy's wait, jitter included. If the policy
// honours hints, the hint, capped at maxRetryAfter (backoff.max without
// one), with the same jitter, is waited when it is longer. Taking the larger
// of the two with the jitter applied to each is the same as applying the
// jitter to the larger, so jobs told the same wait still spread out; and a
// hint never shortens the policy's wait.
func honourRetryAfter(policy ejv1.RetryPolicy, policyDelay, hint time.Duration, jitter float64) retryWait {
	wait := retryWait{Delay: policyDelay, Source: delaySourcePolicy, Hint: hint}
	if hint <= 0 {
		wait.Hint = 0
		return wait
	}
	if policy.RetryAfter == ejv1.RetryAfterIgnore {
		wait.Ignored = hintByPolicy
		return wait
	}
	wait.Cap = ptr.Deref(policy.MaxRetryAfter, policy.Backoff.Max).Duration
	if hint > wait.Cap {
		hint, wait.Ignored = wait.Cap, hintCapped
	}
	if hinted := withJitter(hint, ptr.Deref(policy.Backoff.JitterPercent, 0), jitter); hinted > policyDelay {
		wait.Delay, wait.Source = hinted, delaySourceHint
	}
	return wait
}

// note tells people in the job's message what the service asked for, and
// what the policy made of it; "" without a hint.
func (w retryWait) note() string {
	asked := "the service asked to wait " + duration.HumanDuration(w.Hint)
	switch {
	case w.Hint == 0:
		return ""
	case w.Ignored == hintCapped:
		return fmt.Sprintf(" (%s; maxRetryAfter caps it at %s)", asked, duration.HumanDuration(w.Cap))
	case w.Ignored == hintByPolicy:
		return fmt.Sprintf(" (%s; retryAfter is %s)", asked, ejv1.RetryAfterIgnore)
	}
	return " (" + asked + ")"
}

// retryTime is when a retry may start: now plus the delay, as the API stores
// it (rounded up to the microsecond), so that the operator waits for exactly
// the time the job shows, before and after a restart, and never starts the
// retry before it.
func retryTime(now time.Time, delay time.Duration) ejv1.PreciseTime {
	return ejv1.NewPreciseTime(now.Add(delay))
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
