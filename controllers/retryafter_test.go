package controllers

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
)

// The transitions of a failure that carries a Retry-After hint. With the
// fixtures' backoff and jitter, the first retry's own wait is 33.75 s, and a
// hint of h is waited as 1.125 × h.

// rateLimited is attempt n's Pod, failed with a 429 and the given hint line
// ("" for none).
func rateLimited(attempt int32, hintLine string) *corev1.Pod {
	message := "RateLimitExceeded: 429 from api.example"
	if hintLine != "" {
		message += "\n" + hintLine
	}
	return terminatedPod(attempt, corev1.PodFailed, 75, message)
}

// retriedWithHint is f.retried for a failure with a hint: the message and
// the event end with the note, the backoff sample has the source, and the
// ignored hint, if any, is counted before the retry is.
func retriedWithHint(f failedWith, counter string, delay time.Duration, note, source, ignored string) transitionOutcome {
	o := f.retried(counter, delay)
	o.Message += note
	o.Events[len(o.Events)-1] = normal(ejv1.ReasonRetryScheduled,
		fmt.Sprintf("%s. Next attempt at %s (in %s).", o.Message, o.NextRetryAt, delay))
	scheduled := slices.Clone(o.Metrics[len(o.Metrics)-2:])
	scheduled[1].Labels["source"] = source
	o.Metrics = o.Metrics[:len(o.Metrics)-2]
	if ignored != "" {
		o.Metrics = append(o.Metrics, hintIgnored(ignored))
	}
	o.Metrics = append(o.Metrics, scheduled...)
	return o
}

func hintIgnored(reason string) observation {
	return observation{Metric: metricRetryAfterIgnored, Value: 1, Labels: prometheus.Labels{"reason": reason}}
}

func TestTransitionsOfAFailureWithARetryAfterHint(t *testing.T) {
	limited := func(attempt, retryCount int32) failedWith {
		return failedWith{attempt: attempt, errorType: "RateLimitExceeded", class: ejv1.ClassRetryable,
			message: "429 from api.example", retryCount: retryCount}
	}
	ignoringHints := runningJob(1)
	ignoringHints.Spec.RetryPolicy.RetryAfter = ejv1.RetryAfterIgnore
	cappedAtTwoMinutes := runningJob(1)
	cappedAtTwoMinutes.Spec.RetryPolicy.MaxRetryAfter = &metav1.Duration{Duration: 2 * time.Minute}
	ignoredByRule := runningJob(1)
	ignoredByRule.Spec.RetryPolicy.Rules = []ejv1.RetryRule{{ErrorTypes: []string{"RateLimit"}, Action: ejv1.RuleActionIgnore}}
	unparsable := limited(1, 1).retried("Retry 1/3", firstRetryWait)
	unparsable.Metrics = append([]observation{hintIgnored(hintUnparsable)}, unparsable.Metrics...)
	exhausted := limited(4, 3).ended("Max retries (3) exceeded. Last error: RateLimitExceeded: 429 from api.example", ejv1.ReasonMaxRetriesExceeded)

	cases := []struct {
		transitionCase
		// wantRetryAfter is status.lastFailure.retryAfter, "" for none.
		wantRetryAfter string
	}{{
		transitionCase: transitionCase{
			name:   "a hint longer than the backoff sets the wait, and the message says so",
			job:    runningJob(1),
			happen: follow(rateLimited(1, "Retry-After: 60")),
			want: retriedWithHint(limited(1, 1), "Retry 1/3", 67*time.Second+500*time.Millisecond,
				" (the service asked to wait 60s)", delaySourceHint, ""),
		},
		wantRetryAfter: "1m0s",
	}, {
		transitionCase: transitionCase{
			name:   "a hint shorter than the backoff leaves the backoff's wait",
			job:    runningJob(1),
			happen: follow(rateLimited(1, "Retry-After: 10")),
			want: retriedWithHint(limited(1, 1), "Retry 1/3", firstRetryWait,
				" (the service asked to wait 10s)", delaySourcePolicy, ""),
		},
		wantRetryAfter: "10s",
	}, {
		transitionCase: transitionCase{
			name:   "a hint of years is capped at backoff.max, and recorded as asked",
			job:    runningJob(1),
			happen: follow(rateLimited(1, "Retry-After: 315360000")),
			want: retriedWithHint(limited(1, 1), "Retry 1/3", 67*time.Minute+30*time.Second,
				" (the service asked to wait 10y; maxRetryAfter caps it at 60m)", delaySourceHint, hintCapped),
		},
		wantRetryAfter: "87600h0m0s",
	}, {
		transitionCase: transitionCase{
			name:   "a hint is capped at maxRetryAfter",
			job:    cappedAtTwoMinutes,
			happen: follow(rateLimited(1, "Retry-After: 10m")),
			want: retriedWithHint(limited(1, 1), "Retry 1/3", 135*time.Second,
				" (the service asked to wait 10m; maxRetryAfter caps it at 2m)", delaySourceHint, hintCapped),
		},
		wantRetryAfter: "10m0s",
	}, {
		transitionCase: transitionCase{
			name:   "retryAfter Ignore waits the backoff, and the message says what was asked",
			job:    ignoringHints,
			happen: follow(rateLimited(1, "Retry-After: 60")),
			want: retriedWithHint(limited(1, 1), "Retry 1/3", firstRetryWait,
				" (the service asked to wait 60s; retryAfter is Ignore)", delaySourcePolicy, hintByPolicy),
		},
		wantRetryAfter: "1m0s",
	}, {
		transitionCase: transitionCase{
			name:   "an unparsable hint is counted and ignored, and nothing of it recorded",
			job:    runningJob(1),
			happen: follow(rateLimited(1, "Retry-After: 99999999999999999999")),
			want:   unparsable,
		},
	}, {
		transitionCase: transitionCase{
			name:   "a hint never adds a retry: with the retries spent the job fails",
			job:    runningJob(4),
			happen: follow(rateLimited(4, "Retry-After: 60")),
			want:   exhausted,
		},
		wantRetryAfter: "1m0s",
	}, {
		transitionCase: transitionCase{
			name:   "a hint lengthens the wait after a failure a rule ignores, too",
			job:    ignoredByRule,
			happen: follow(rateLimited(1, "Retry-After: 60")),
			want: retriedWithHint(failedWith{attempt: 1, errorType: "RateLimitExceeded", class: ejv1.ClassDisruption,
				message: "429 from api.example", disruptionCount: 1}, "Disruption 1/5", 67*time.Second+500*time.Millisecond,
				" (the service asked to wait 60s)", delaySourceHint, ""),
		},
		wantRetryAfter: "1m0s",
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newTransitionScope(tc.job)
			got := outcomeOf(s, tc.happen(s))
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("outcome (-want +got):\n%s", diff)
			}
			var gotRetryAfter string
			if f := s.job.Status.LastFailure; f != nil && f.RetryAfter != nil {
				gotRetryAfter = f.RetryAfter.Duration.String()
			}
			if diff := cmp.Diff(tc.wantRetryAfter, gotRetryAfter); diff != "" {
				t.Errorf("lastFailure.retryAfter (-want +got):\n%s", diff)
			}
		})
	}
}
