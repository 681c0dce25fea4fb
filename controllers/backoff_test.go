package controllers

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
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
		{"a fraction of a second stays as it is", 30 * time.Second, time.Date(2026, 11, 28, 12, 0, 30, 400_000_000, time.UTC)},
		{"a fraction of a microsecond rounds up to the next one", 1500 * time.Nanosecond, time.Date(2026, 11, 28, 12, 0, 0, 400_002_000, time.UTC)},
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

// TestRetryWaitWithAHint follows a failed attempt's termination message, as
// the extractor wrote it, to the retry time the job shows, on a fixed clock:
// the first retry's backoff is 30 s and the jitter draw 0.5 of 25 %, so the
// policy's wait is 33.75 s.
func TestRetryWaitWithAHint(t *testing.T) {
	now := time.Date(2026, 12, 1, 22, 0, 0, 0, time.UTC)
	const policyWait = 33*time.Second + 750*time.Millisecond
	type outcome struct {
		Delay       time.Duration
		Source      string
		Ignored     string // the ignored-hints counter's reason, "" for none
		RetryAfter  string // lastFailure.retryAfter, "" for none
		NextRetryAt time.Time
		Note        string
	}
	withPolicy := func(mutate func(*ejv1.RetryPolicy)) ejv1.RetryPolicy {
		policy := ejv1.RetryPolicy{Backoff: defaultBackoff(), RetryAfter: ejv1.RetryAfterHonor}
		mutate(&policy)
		return policy
	}
	honour := withPolicy(func(*ejv1.RetryPolicy) {})
	cases := []struct {
		name    string
		message string
		reasons []string // the Pod's reasons, none for a plain failure
		policy  ejv1.RetryPolicy
		want    outcome
	}{
		{"without a hint the policy's wait stands", "RateLimitExceeded: 429", nil, honour,
			outcome{Delay: policyWait, Source: delaySourcePolicy, NextRetryAt: now.Add(policyWait)}},
		{"a hint longer than the backoff is waited, with the jitter on it", "RateLimitExceeded: 429\nRetry-After: 60", nil, honour,
			outcome{Delay: 67*time.Second + 500*time.Millisecond, Source: delaySourceHint, RetryAfter: "1m0s",
				NextRetryAt: now.Add(67*time.Second + 500*time.Millisecond), Note: " (the service asked to wait 60s)"}},
		{"a hint shorter than the backoff never shortens it", "RateLimitExceeded: 429\nRetry-After: 10", nil, honour,
			outcome{Delay: policyWait, Source: delaySourcePolicy, RetryAfter: "10s",
				NextRetryAt: now.Add(policyWait), Note: " (the service asked to wait 10s)"}},
		{"a hint of years is capped at backoff.max when maxRetryAfter is unset", "RateLimitExceeded: 429\nRetry-After: 315360000", nil, honour,
			outcome{Delay: 67*time.Minute + 30*time.Second, Source: delaySourceHint, Ignored: hintCapped, RetryAfter: "87600h0m0s",
				NextRetryAt: now.Add(67*time.Minute + 30*time.Second), Note: " (the service asked to wait 10y; maxRetryAfter caps it at 60m)"}},
		{"a hint is capped at maxRetryAfter", "RateLimitExceeded: 429\nRetry-After: 1h",
			nil, withPolicy(func(p *ejv1.RetryPolicy) { p.MaxRetryAfter = &metav1.Duration{Duration: 2 * time.Minute} }),
			outcome{Delay: 135 * time.Second, Source: delaySourceHint, Ignored: hintCapped, RetryAfter: "1h0m0s",
				NextRetryAt: now.Add(135 * time.Second), Note: " (the service asked to wait 60m; maxRetryAfter caps it at 2m)"}},
		{"a negative hint is unparsable and ignored", "RateLimitExceeded: 429\nRetry-After: -60", nil, honour,
			outcome{Delay: policyWait, Source: delaySourcePolicy, Ignored: hintUnparsable, NextRetryAt: now.Add(policyWait)}},
		{"a zero hint asks for no wait and is no hint", "RateLimitExceeded: 429\nRetry-After: 0", nil, honour,
			outcome{Delay: policyWait, Source: delaySourcePolicy, NextRetryAt: now.Add(policyWait)}},
		{"a garbage hint is unparsable and ignored", "RateLimitExceeded: 429\nRetry-After: in a while", nil, honour,
			outcome{Delay: policyWait, Source: delaySourcePolicy, Ignored: hintUnparsable, NextRetryAt: now.Add(policyWait)}},
		{"an HTTP date, even one in the past, is unparsable: the extractor must turn it into seconds",
			"ServiceUnavailable: 503\nRetry-After: Wed, 21 Oct 2015 07:28:00 GMT", nil, honour,
			outcome{Delay: policyWait, Source: delaySourcePolicy, Ignored: hintUnparsable, NextRetryAt: now.Add(policyWait)}},
		{"retryAfter Ignore keeps the policy's wait and says so", "RateLimitExceeded: 429\nRetry-After: 600",
			nil, withPolicy(func(p *ejv1.RetryPolicy) { p.RetryAfter = ejv1.RetryAfterIgnore }),
			outcome{Delay: policyWait, Source: delaySourcePolicy, Ignored: hintByPolicy, RetryAfter: "10m0s",
				NextRetryAt: now.Add(policyWait), Note: " (the service asked to wait 10m; retryAfter is Ignore)"}},
		{"a hint in the log tail of a Pod without a failure line is not trusted", "2026-12-01T22:00:00Z fetching\nRetry-After: 600", nil, honour,
			outcome{Delay: policyWait, Source: delaySourcePolicy, NextRetryAt: now.Add(policyWait)}},
		{"a hint of an OOMKilled attempt is not about its failure", "RateLimitExceeded: 429\nRetry-After: 600", []string{containerReasonOOMKilled}, honour,
			outcome{Delay: policyWait, Source: delaySourcePolicy, NextRetryAt: now.Add(policyWait)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			failure, hintErr := classify(attemptFailure{exitCode: ptr.To[int32](75), message: tc.message, reasons: tc.reasons}, nil)
			var hint time.Duration
			got := outcome{}
			if failure.RetryAfter != nil {
				hint, got.RetryAfter = failure.RetryAfter.Duration, failure.RetryAfter.Duration.String()
			}
			wait := honourRetryAfter(tc.policy, retryDelay(tc.policy.Backoff, 1, 0.5), hint, 0.5)
			got.Delay, got.Source, got.Ignored, got.Note = wait.Delay, wait.Source, wait.Ignored, wait.note()
			if hintErr != nil {
				got.Ignored = hintUnparsable
			}
			got.NextRetryAt = retryTime(now, wait.Delay).Time
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("retry wait (-want +got):\n%s", diff)
			}
		})
	}
}

func TestJobsToldTheSameWaitDoNotComeBackTogether(t *testing.T) {
	policy := ejv1.RetryPolicy{Backoff: defaultBackoff(), RetryAfter: ejv1.RetryAfterHonor}
	seen := map[time.Duration]bool{}
	for draw := 0.0; draw < 1; draw += 0.1 {
		wait := honourRetryAfter(policy, retryDelay(policy.Backoff, 1, draw), time.Minute, draw)
		if wait.Source != delaySourceHint || wait.Delay < time.Minute || wait.Delay > 75*time.Second {
			t.Errorf("jitter %.1f: wait %v from %s, want the hint's 60s plus up to 25%%", draw, wait.Delay, wait.Source)
		}
		seen[wait.Delay.Truncate(time.Second)] = true
	}
	if len(seen) < 10 {
		t.Errorf("ten jitter draws gave %d distinct seconds, want 10", len(seen))
	}
}
