//go:build chaos

package chaos

import (
	"fmt"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
)

// planAnnotation on a job's pod template (and so on each attempt's Pod) tells
// the test's kubelet how each attempt ends: a comma-separated list of
// outcomes, one per attempt; attempts past the end repeat the last one.
const planAnnotation = "chaos.extraction.pybase.io/plan"

// The outcomes an attempt can have.
const (
	outcomeOK    = "ok"    // exits 0 with a JSON result
	outcomeFail  = "fail"  // exits 1 with ConnectionError: retryable
	outcomePerm  = "perm"  // exits 1 with CorruptedFile: permanent
	outcomeEvict = "evict" // the kubelet evicts the Pod: a disruption
	outcomeHold  = "hold"  // runs until deleted: for cancel and deletion cases
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

type plan []string

func parsePlan(s string) plan { return strings.Split(s, ",") }

func (p plan) at(attempt int) string {
	if attempt < 1 {
		return ""
	}
	if attempt > len(p) {
		return p[len(p)-1]
	}
	return p[attempt-1]
}

// jobPlan is one job of a run: what the test asked for and what must come of it.
type jobPlan struct {
	namespace, name string
	plan            plan
	maxRetries      int32
	maxDisruptions  int32
	backoff         ejv1.Backoff
	cancel          bool // the test sets spec.cancel after a random delay
	expect          expectation
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
		case outcomeOK:
			e.phase = ejv1.PhaseSucceeded
			return e
		case outcomePerm:
			e.phase = ejv1.PhaseFailed
			return e
		case outcomeEvict:
			if e.disruptionCount < maxDisruptions {
				e.disruptionCount++
				delay = min(b.Base.Duration, b.Max.Duration)
				break
			}
			fallthrough
		case outcomeFail:
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
func outcomeOfAttempt(token string) ejv1.AttemptOutcome {
	switch token {
	case outcomeOK:
		return ejv1.OutcomeSucceeded
	case outcomeHold:
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
	total := 0
	for _, m := range mix {
		total += m.weight
	}
	jobs := make([]*jobPlan, 0, n)
	for i := range n {
		pick := r.intN(total)
		m := mix[0]
		for _, candidate := range mix {
			if pick < candidate.weight {
				m = candidate
				break
			}
			pick -= candidate.weight
		}
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

// object is the ExtractionJob of a plan.
func (j *jobPlan) object() *ejv1.ExtractionJob {
	planText := strings.Join(j.plan, ",")
	return &ejv1.ExtractionJob{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: j.namespace, Name: j.name,
			Annotations: map[string]string{planAnnotation: planText},
		},
		Spec: ejv1.ExtractionJobSpec{
			Format: ejv1.FormatPDF,
			Source: ejv1.Source{URL: "s3://chaos/" + j.name + ".pdf"},
			RetryPolicy: ejv1.RetryPolicy{
				MaxRetries:     ptr.To(j.maxRetries),
				MaxDisruptions: ptr.To(j.maxDisruptions),
				Backoff:        j.backoff,
			},
			PodTemplate: &ejv1.PodTemplate{Metadata: ejv1.PodTemplateMetadata{
				Annotations: map[string]string{planAnnotation: planText},
			}},
		},
	}
}
