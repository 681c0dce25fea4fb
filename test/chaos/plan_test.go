//go:build chaos

package chaos

import (
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
	"github.com/pybase/extraction-operator/test/harness/builders"
	"github.com/pybase/extraction-operator/test/harness/sim"
)

// Every chaos job's Pods play a per-attempt list of outcomes (the
// sim.extraction.pybase.io/attempts annotation), with the failure and the
// result below; attempts past the end repeat the last outcome. sim.Fail
// exits 1 with a retryable ConnectionError, sim.Perm with a permanent
// CorruptedFile, sim.Evict is a disruption, sim.Hold runs until deleted
// (for cancel and deletion cases).
const (
	chaosFailure = "ConnectionError: chaos: connection reset by peer"
	chaosResult  = `{"chaos":true}`
)

const chaosImage = "registry.example/extractor:chaos"

// The backoff of every chaos job: retries after 1 s, 2 s, 4 s, 4 s ... plus up
// to 20 % jitter; disruptions after 1 s.
var chaosBackoff = ejv1.Backoff{
	Base:          metav1.Duration{Duration: time.Second},
	Multiplier:    2,
	Max:           metav1.Duration{Duration: 4 * time.Second},
	JitterPercent: ptr.To[int32](20),
}

// plan is a job's outcome per attempt.
type plan []sim.Token

// parsePlan reads a plan the test writes out, such as "fail,ok".
func parsePlan(s string) plan {
	tokens, err := sim.ParseTokens(s)
	if err != nil {
		panic(err)
	}
	return tokens
}

func (p plan) at(attempt int) sim.Token { return sim.TokenAt(p, attempt) }

func (p plan) String() string { return sim.JoinTokens(p) }

// simPlan is the plan as the simulated kubelet reads it.
func (p plan) simPlan() sim.Plan {
	return sim.Plan{Attempts: p, Message: chaosFailure, Result: chaosResult}
}

// jobPlan is one job of a run: what the test asked for and what must come of it.
type jobPlan struct {
	namespace, name string
	plan            plan
	maxRetries      int32
	maxDisruptions  int32
	backoff         ejv1.Backoff
	cancel          bool   // the test sets spec.cancel after a random delay
	class           string // the ExtractorClass it names; "" for the default
	// failure is the termination message of its failing attempts;
	// "" for chaosFailure.
	failure string
	expect  expectation
}

func (j *jobPlan) key() string { return j.namespace + "/" + j.name }

// expectation is the end state the operator's contract requires for a plan.
type expectation struct {
	phase                       ejv1.Phase
	retryCount, disruptionCount int32
	// attempts is the exact number of attempts; a cancelled job has at most one.
	attempts int32
	// minDelay[a] is the shortest wait the backoff allows before attempt a
	// (without jitter); zero for the first attempt.
	minDelay []time.Duration
}

// expect simulates the contract: permanent errors fail the job, retryable
// ones spend maxRetries with a growing backoff, disruptions spend
// maxDisruptions first and wait the base delay.
func expect(p plan, maxRetries, maxDisruptions int32, b ejv1.Backoff, cancel bool) expectation {
	if cancel {
		return expectation{phase: ejv1.PhaseCancelled, attempts: 1}
	}
	e := expectation{minDelay: []time.Duration{0, 0}}
	for attempt := 1; ; attempt++ {
		e.attempts = int32(attempt)
		var delay time.Duration
		switch p.at(attempt) {
		case sim.OK:
			e.phase = ejv1.PhaseSucceeded
			return e
		case sim.Perm:
			e.phase = ejv1.PhaseFailed
			return e
		case sim.Evict:
			if e.disruptionCount < maxDisruptions {
				e.disruptionCount++
				delay = min(b.Base.Duration, b.Max.Duration)
				break
			}
			fallthrough
		case sim.Fail:
			if e.retryCount >= maxRetries {
				e.phase = ejv1.PhaseFailed
				return e
			}
			e.retryCount++
			delay = b.Base.Duration
			for i := int32(1); i < e.retryCount; i++ {
				delay *= time.Duration(b.Multiplier)
			}
			delay = min(delay, b.Max.Duration)
		default:
			panic(fmt.Sprintf("plan %v: attempt %d has no outcome the simulation knows", p, attempt))
		}
		e.minDelay = append(e.minDelay, delay)
	}
}

// outcomeOfAttempt is the status.attempts outcome an attempt must record.
func outcomeOfAttempt(token sim.Token) ejv1.AttemptOutcome {
	switch token {
	case sim.OK:
		return ejv1.OutcomeSucceeded
	case sim.Hold:
		return ejv1.OutcomeCancelled
	default:
		return ejv1.OutcomeFailed
	}
}

// mix is the failure mix of the chaos runs.
var mix = []struct {
	weight int
	plan   string
	cancel bool
}{
	{28, "ok", false},
	{18, "fail,ok", false},
	{10, "fail,fail,ok", false},
	{10, "fail,fail,fail,fail", false}, // exhausts maxRetries of 1 to 3
	{8, "perm", false},
	{7, "fail,perm", false},
	{6, "evict,ok", false},
	{5, "evict,fail,evict,ok", false},
	{8, "hold", true}, // cancelled while pending or running
}

// newJobPlans draws n jobs from the mix.
func newJobPlans(r *lockedRand, namespace, prefix string, n int) []*jobPlan {
	weights := make([]int, len(mix))
	for i, m := range mix {
		weights[i] = m.weight
	}
	jobs := make([]*jobPlan, 0, n)
	for i := range n {
		m := mix[r.weighted(weights)]
		j := &jobPlan{
			namespace: namespace, name: fmt.Sprintf("%s-%04d", prefix, i),
			plan:       parsePlan(m.plan),
			maxRetries: int32(1 + r.intN(3)), maxDisruptions: int32(2 * r.intN(2)),
			backoff: chaosBackoff, cancel: m.cancel,
		}
		j.expect = expect(j.plan, j.maxRetries, j.maxDisruptions, j.backoff, j.cancel)
		jobs = append(jobs, j)
	}
	return jobs
}

// weighted picks an index with a chance proportional to its weight.
func (l *lockedRand) weighted(weights []int) int {
	total := 0
	for _, w := range weights {
		total += w
	}
	pick := l.intN(total)
	for i, w := range weights {
		if pick < w {
			return i
		}
		pick -= w
	}
	return 0
}

// object is the ExtractionJob of a plan.
func (j *jobPlan) object() *ejv1.ExtractionJob {
	opts := []builders.JobOption{
		builders.WithSource("s3://chaos/" + j.name + ".pdf"),
		builders.WithRetryPolicy(j.maxRetries, j.maxDisruptions, j.backoff),
	}
	if j.class != "" {
		opts = append(opts, builders.WithClass(j.class))
	}
	sp := j.plan.simPlan()
	if j.failure != "" {
		sp.Message = j.failure
	}
	return builders.ExtractionJob(j.namespace, j.name, sp, opts...)
}
