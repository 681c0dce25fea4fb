// Package sim is the one description of what a simulated attempt Pod does,
// read from the sim.extraction.pybase.io/* annotations that a job sets on its
// Pods through spec.podTemplate.metadata.annotations. The KWOK stages in
// config/kwok act on the same annotations, and config/kwok/README.md is the
// reference for users; this package is its executable form: the plan grammar
// (ParsePlan), the outcome of each attempt (Plan.Attempt), the Pod status that
// outcome shows (Status) and a simulated kubelet that writes it (Kubelet).
package sim

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The annotations of a plan.
const (
	Prefix = "sim.extraction.pybase.io/"
	// AnnotationOutcome is "succeed" (the default) or "fail".
	AnnotationOutcome = Prefix + "outcome"
	// AnnotationFailAttempts is "N": attempts 1 to N fail, later ones succeed.
	AnnotationFailAttempts = Prefix + "fail-attempts"
	// AnnotationAttempts is one Token per attempt, "ok,fail,evict,hold";
	// attempts past the end repeat the last. It overrides outcome and
	// fail-attempts.
	AnnotationAttempts = Prefix + "attempts"
	// AnnotationRunSeconds is how long an attempt runs, "2" by default; a
	// list gives one value per attempt, the last repeating.
	AnnotationRunSeconds = Prefix + "run-seconds"
	// AnnotationReason is how a "fail" attempt fails: Error (the default),
	// OOMKilled, DeadlineExceeded, Evicted or any container reason.
	AnnotationReason = Prefix + "reason"
	// AnnotationExitCode is a "fail" attempt's exit code.
	AnnotationExitCode = Prefix + "exit-code"
	// AnnotationMessage is a "fail" attempt's termination message (for
	// Evicted, the Pod's status message).
	AnnotationMessage = Prefix + "message"
	// AnnotationResult is an "ok" attempt's termination message.
	AnnotationResult = Prefix + "result"
	// AnnotationWaitingReason makes the container wait for ever with this
	// reason instead of starting.
	AnnotationWaitingReason = Prefix + "waiting-reason"
	// AnnotationWaitingMessage is the waiting container's message.
	AnnotationWaitingMessage = Prefix + "waiting-message"
)

// Token is what one attempt does, as AnnotationAttempts lists it.
type Token string

const (
	// OK exits 0 with the result annotation as its termination message.
	OK Token = "ok"
	// Fail fails as the reason, exit-code and message annotations say.
	Fail Token = "fail"
	// Perm fails permanently whatever the other annotations say: exit code
	// PermanentExitCode and termination message PermanentMessage.
	Perm Token = "perm"
	// Evict is evicted by the node whatever the other annotations say: Pod
	// reason Evicted with EvictionMessage, a DisruptionTarget condition, and
	// exit code 137.
	Evict Token = "evict"
	// Hold runs until the Pod is deleted (or its deadline passes).
	Hold Token = "hold"
)

var tokens = []Token{OK, Fail, Perm, Evict, Hold}

// The fixed outputs of the perm and evict tokens and of a passed deadline,
// the same as in config/kwok/stages-extraction.yaml.
const (
	// PermanentExitCode is sysexits' EX_DATAERR, which the operator also
	// reads as CorruptedFile when a message is missing, so a batch/v1 Job's
	// podFailurePolicy can tell it apart by exit code alone.
	PermanentExitCode int32 = 65
	PermanentMessage        = "CorruptedFile: the simulated file is broken"
	EvictionMessage         = "The node was low on resource: memory."
	DeadlineMessage         = "Pod was active on the node longer than the specified deadline"
	// KilledExitCode is what a container killed by SIGKILL exits with.
	KilledExitCode int32 = 137
)

// Reasons the reason annotation gives a meaning beyond the container's reason.
const (
	ReasonError            = "Error"
	ReasonOOMKilled        = "OOMKilled"
	ReasonDeadlineExceeded = "DeadlineExceeded"
	ReasonEvicted          = "Evicted"
	ReasonCompleted        = "Completed"
	// ReasonTerminationByKubelet is the DisruptionTarget condition's reason
	// on an eviction.
	ReasonTerminationByKubelet = "TerminationByKubelet"
)

// DefaultRunSeconds is how long an attempt runs when the plan does not say.
const DefaultRunSeconds = 2

// Plan is a job's simulation plan: every annotation, parsed. The zero Plan
// succeeds on every attempt after DefaultRunSeconds.
type Plan struct {
	Outcome        string // "succeed", "fail", or "" for succeed
	FailAttempts   *int
	Attempts       []Token
	RunSeconds     []int
	Reason         string
	ExitCode       *int32
	Message        string
	Result         string
	WaitingReason  string
	WaitingMessage string
}

// ParsePlan reads a plan from a Pod's (or a pod template's) annotations.
// Anything the KWOK stages could not read either is an error; there the Pod
// keeps running, which the simulated kubelet does too.
func ParsePlan(annotations map[string]string) (Plan, error) {
	p := Plan{
		Outcome:        annotations[AnnotationOutcome],
		Reason:         annotations[AnnotationReason],
		Message:        annotations[AnnotationMessage],
		Result:         annotations[AnnotationResult],
		WaitingReason:  annotations[AnnotationWaitingReason],
		WaitingMessage: annotations[AnnotationWaitingMessage],
	}
	if _, ok := annotations[AnnotationOutcome]; ok && p.Outcome != "succeed" && p.Outcome != "fail" {
		return Plan{}, fmt.Errorf("%s: %q is neither succeed nor fail", AnnotationOutcome, p.Outcome)
	}
	if v, ok := annotations[AnnotationFailAttempts]; ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			return Plan{}, fmt.Errorf("%s: %w", AnnotationFailAttempts, err)
		}
		p.FailAttempts = &n
	}
	if v, ok := annotations[AnnotationAttempts]; ok {
		for _, t := range strings.Split(v, ",") {
			if !validToken(Token(t)) {
				return Plan{}, fmt.Errorf("%s: %q is not one of %v", AnnotationAttempts, t, tokens)
			}
			p.Attempts = append(p.Attempts, Token(t))
		}
	}
	if v, ok := annotations[AnnotationRunSeconds]; ok {
		for _, s := range strings.Split(v, ",") {
			n, err := strconv.Atoi(s)
			if err != nil {
				return Plan{}, fmt.Errorf("%s: %w", AnnotationRunSeconds, err)
			}
			p.RunSeconds = append(p.RunSeconds, n)
		}
	}
	if v, ok := annotations[AnnotationExitCode]; ok {
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil {
			return Plan{}, fmt.Errorf("%s: %w", AnnotationExitCode, err)
		}
		code := int32(n)
		p.ExitCode = &code
	}
	return p, nil
}

func validToken(t Token) bool {
	for _, known := range tokens {
		if t == known {
			return true
		}
	}
	return false
}

// Annotations is the plan written as annotations, the inverse of ParsePlan.
func (p Plan) Annotations() map[string]string {
	a := map[string]string{}
	set := func(key, value string) {
		if value != "" {
			a[key] = value
		}
	}
	set(AnnotationOutcome, p.Outcome)
	if p.FailAttempts != nil {
		a[AnnotationFailAttempts] = strconv.Itoa(*p.FailAttempts)
	}
	if len(p.Attempts) > 0 {
		a[AnnotationAttempts] = JoinTokens(p.Attempts)
	}
	if len(p.RunSeconds) > 0 {
		runs := make([]string, len(p.RunSeconds))
		for i, n := range p.RunSeconds {
			runs[i] = strconv.Itoa(n)
		}
		a[AnnotationRunSeconds] = strings.Join(runs, ",")
	}
	set(AnnotationReason, p.Reason)
	if p.ExitCode != nil {
		a[AnnotationExitCode] = strconv.Itoa(int(*p.ExitCode))
	}
	set(AnnotationMessage, p.Message)
	set(AnnotationResult, p.Result)
	set(AnnotationWaitingReason, p.WaitingReason)
	set(AnnotationWaitingMessage, p.WaitingMessage)
	return a
}

// ParseTokens reads a list such as "ok,fail,evict".
func ParseTokens(s string) ([]Token, error) {
	p, err := ParsePlan(map[string]string{AnnotationAttempts: s})
	return p.Attempts, err
}

// JoinTokens writes a list such as "ok,fail,evict".
func JoinTokens(ts []Token) string {
	s := make([]string, len(ts))
	for i, t := range ts {
		s[i] = string(t)
	}
	return strings.Join(s, ",")
}

// TokenAt is the entry of a per-attempt list for an attempt (1-based):
// attempts past the end repeat the last entry.
func TokenAt(ts []Token, attempt int) Token {
	return ts[min(max(attempt, 1), len(ts))-1]
}

// Token is what the attempt does: the attempts list first, then
// fail-attempts, then outcome.
func (p Plan) Token(attempt int) Token {
	switch {
	case len(p.Attempts) > 0:
		return TokenAt(p.Attempts, attempt)
	case p.FailAttempts != nil:
		if attempt <= *p.FailAttempts {
			return Fail
		}
		return OK
	case p.Outcome == "fail":
		return Fail
	default:
		return OK
	}
}

// RunTime is how long the attempt runs by its plan, and whether the plan
// says so (otherwise DefaultRunSeconds).
func (p Plan) RunTime(attempt int) (time.Duration, bool) {
	if len(p.RunSeconds) == 0 {
		return DefaultRunSeconds * time.Second, false
	}
	return time.Duration(p.RunSeconds[min(max(attempt, 1), len(p.RunSeconds))-1]) * time.Second, true
}
