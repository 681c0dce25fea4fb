package workload

import (
	"fmt"
	"math/rand/v2"
	"sort"
)

// Plan is what the fake kubelet makes of a job's attempts. It travels on the
// job's Pod template as a label, so both sides' Pods carry it.
type Plan string

const (
	// PlanSucceed succeeds on the first attempt.
	PlanSucceed Plan = "succeed"
	// PlanFlaky fails once with a retryable error, then succeeds.
	PlanFlaky Plan = "flaky"
	// PlanExhaust fails with a retryable error on every attempt.
	PlanExhaust Plan = "exhaust"
	// PlanPermanent fails once with a permanent error.
	PlanPermanent Plan = "permanent"
)

// PlanLabel carries a job's plan to its Pods.
const PlanLabel = "bench.pybase.io/plan"

// Exit codes of the failures. The Job controller cannot read termination
// messages, so its podFailurePolicy tells the two failures apart by exit
// code; 65 is sysexits' EX_DATAERR, which the operator also reads as
// CorruptedFile when a message is missing.
const (
	ExitRetryable = 1
	ExitPermanent = 65
)

// Outcome is how the fake kubelet ends one attempt's Pod.
type Outcome struct {
	Succeeded bool
	ExitCode  int32
	// Message is the container's termination message, in the operator's
	// "ErrorType: message" contract, or its JSON result on success.
	Message string
}

var (
	success   = Outcome{Succeeded: true, Message: `{"pages":1}`}
	retryable = Outcome{ExitCode: ExitRetryable, Message: "ConnectionError: connection reset by peer"}
	permanent = Outcome{ExitCode: ExitPermanent, Message: "CorruptedFile: broken xref table"}
)

// Outcome of the given attempt (1-based).
func (p Plan) Outcome(attempt int) Outcome {
	switch p {
	case PlanFlaky:
		if attempt == 1 {
			return retryable
		}
		return success
	case PlanExhaust:
		return retryable
	case PlanPermanent:
		return permanent
	default:
		return success
	}
}

// Expected is the end state a correct controller reaches, given the retry
// budget: whether the job succeeds, and after how many attempts.
func (p Plan) Expected(maxRetries int) (succeeded bool, attempts int) {
	switch p {
	case PlanFlaky:
		return true, 2
	case PlanExhaust:
		return false, maxRetries + 1
	case PlanPermanent:
		return false, 1
	default:
		return true, 1
	}
}

// Share is a plan's part of a mix, in percent.
type Share struct {
	Plan    Plan
	Percent int
}

// RetryMix is scenario 2's mix: 40 % succeed, 30 % fail once then succeed,
// 10 % exhaust their retries, 20 % fail permanently.
var RetryMix = []Share{{PlanSucceed, 40}, {PlanFlaky, 30}, {PlanExhaust, 10}, {PlanPermanent, 20}}

// Mix assigns plans to n jobs in the given shares, shuffled with a fixed
// seed so that every run and every side sees the same sequence. Counts are
// rounded by largest remainder, so they always add up to n.
func Mix(n int, shares []Share) ([]Plan, error) {
	total := 0
	for _, s := range shares {
		total += s.Percent
	}
	if total != 100 {
		return nil, fmt.Errorf("shares add up to %d %%, not 100 %%", total)
	}
	counts := make([]int, len(shares))
	order := make([]int, len(shares))
	assigned := 0
	for i, s := range shares {
		counts[i] = n * s.Percent / 100
		assigned += counts[i]
		order[i] = i
	}
	// The few jobs that rounding down left over go to the largest remainders,
	// the earlier share first on ties.
	sort.SliceStable(order, func(a, b int) bool {
		return n*shares[order[a]].Percent%100 > n*shares[order[b]].Percent%100
	})
	for _, i := range order[:n-assigned] {
		counts[i]++
	}
	plans := make([]Plan, 0, n)
	for i, s := range shares {
		for range counts[i] {
			plans = append(plans, s.Plan)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	rng.Shuffle(len(plans), func(i, j int) { plans[i], plans[j] = plans[j], plans[i] })
	return plans, nil
}

// Uniform is n jobs of one plan.
func Uniform(n int, p Plan) []Plan {
	plans := make([]Plan, n)
	for i := range plans {
		plans[i] = p
	}
	return plans
}
