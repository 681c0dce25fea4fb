package workload

import (
	"fmt"
	"math/rand/v2"
	"sort"

	"k8s.io/utils/ptr"

	"github.com/pybase/extraction-operator/test/harness/sim"
)

// Plan names what a job's attempts do. The simulated kubelet of
// test/harness/sim plays it from the sim.extraction.pybase.io annotations
// that Sim gives it, which both sides' jobs put on their Pod templates.
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

// ExitRetryable is the exit code of the retryable failure. The Job
// controller cannot read termination messages, so its podFailurePolicy tells
// the two failures apart by exit code: the permanent one exits with
// sim.PermanentExitCode, sysexits' EX_DATAERR.
const ExitRetryable = 1

// retryableMessage is the retryable failure's termination message, in the
// operator's "ErrorType: message" contract.
const retryableMessage = "ConnectionError: connection reset by peer"

// result is a successful attempt's termination message.
const result = `{"pages":1}`

// Sim is the plan as the simulated kubelet plays it: one token per attempt,
// the last repeating.
func (p Plan) Sim() sim.Plan {
	plan := sim.Plan{Result: result}
	switch p {
	case PlanFlaky:
		plan.Attempts = []sim.Token{sim.Fail, sim.OK}
	case PlanExhaust:
		plan.Attempts = []sim.Token{sim.Fail}
	case PlanPermanent:
		plan.Attempts = []sim.Token{sim.Perm}
	default:
		plan.Attempts = []sim.Token{sim.OK}
	}
	if p == PlanFlaky || p == PlanExhaust {
		plan.ExitCode, plan.Message = ptr.To[int32](ExitRetryable), retryableMessage
	}
	return plan
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
