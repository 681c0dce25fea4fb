package v1alpha1

import (
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Format is the kind of file an ExtractionJob extracts.
// +kubebuilder:validation:Enum=pdf;dxf;ifc;step;werk24
type Format string

// The formats the operator knows an extractor image for.
const (
	FormatPDF    Format = "pdf"
	FormatDXF    Format = "dxf"
	FormatIFC    Format = "ifc"
	FormatSTEP   Format = "step"
	FormatWerk24 Format = "werk24"
)

// Formats lists every Format, in the order of the schema's enum.
var Formats = []Format{FormatPDF, FormatDXF, FormatIFC, FormatSTEP, FormatWerk24}

// ExtractionJobSpec is what the job's author asks for.
// +kubebuilder:validation:XValidation:rule="self.format == oldSelf.format",message="format is immutable"
// +kubebuilder:validation:XValidation:rule="self.source == oldSelf.source",message="source is immutable"
// +kubebuilder:validation:XValidation:rule="has(self.extractorClassName) == has(oldSelf.extractorClassName) && (!has(self.extractorClassName) || self.extractorClassName == oldSelf.extractorClassName)",message="extractorClassName is immutable: it cannot be set, changed or removed after creation",fieldPath=".extractorClassName"
type ExtractionJobSpec struct {
	// format is the kind of file to extract. It cannot change after creation.
	// The job's ExtractorClass, which must serve the format, chooses the
	// extractor image.
	// +required
	Format Format `json:"format"`

	// source is the file to extract. It cannot change after creation.
	// +required
	Source Source `json:"source"`

	// extractorClassName names the cluster-scoped ExtractorClass that runs the
	// job's attempts. Unset uses the oldest default class that serves the
	// job's format and admits its namespace. A job whose class is missing or
	// does not serve its format stays Pending until it does. It cannot be set,
	// changed or removed after creation.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	ExtractorClassName string `json:"extractorClassName,omitempty"`

	// options are passed to the extractor as a JSON object in EXTRACTION_OPTIONS.
	// Edits take effect from the next attempt on.
	// +optional
	// +kubebuilder:validation:MaxProperties=64
	Options map[string]string `json:"options,omitempty"`

	// retryPolicy decides which failures are retried and how long the operator
	// waits before each retry. Every field has a default.
	// +optional
	// +kubebuilder:default={}
	RetryPolicy RetryPolicy `json:"retryPolicy,omitzero"`

	// attemptTimeout limits how long one attempt may run, as a Go duration such
	// as "10m". It is rounded up to whole seconds and becomes the Pod's
	// activeDeadlineSeconds; an attempt that hits it fails with the retryable
	// error type TimeoutError.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s') && duration(self) <= duration('168h')",message="attemptTimeout must be between 1s and 168h"
	AttemptTimeout *metav1.Duration `json:"attemptTimeout,omitempty"`

	// cancel, when set to true, cancels the job: a running attempt's Pod is
	// deleted and the job ends in phase Cancelled. Setting it back to false and
	// requesting a retry starts the job again.
	// +optional
	// +kubebuilder:default=false
	Cancel bool `json:"cancel,omitempty"`

	// ttlSecondsAfterFinished deletes the job, and its Pods with it, that many
	// seconds after it Succeeded, Failed or was Cancelled. Unset keeps it. A
	// GitOps tool that still has the job in git will create it again and it
	// will run again, as with batch/v1 Jobs.
	// +optional
	// +kubebuilder:validation:Minimum=0
	TTLSecondsAfterFinished *int32 `json:"ttlSecondsAfterFinished,omitempty"`

	// podTemplate holds metadata copied to every attempt's Pod, for cost
	// allocation, service meshes and similar tooling.
	// +optional
	PodTemplate *PodTemplate `json:"podTemplate,omitempty"`
}

// Source is where the file to extract lives.
type Source struct {
	// url addresses the file, for example s3://bucket/drawing.pdf or https://example.com/a.dxf.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	URL string `json:"url"`

	// secretRef names a Secret in the job's namespace whose keys are handed to
	// the extractor as environment variables, for credentials.
	// +optional
	SecretRef *SecretReference `json:"secretRef,omitempty"`
}

// SecretReference names a Secret in the job's own namespace.
type SecretReference struct {
	// name of the Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`
}

// PodTemplate is the part of the attempt Pods the job's author may shape.
type PodTemplate struct {
	// metadata holds labels and annotations for every attempt's Pod.
	// +optional
	Metadata PodTemplateMetadata `json:"metadata,omitempty"`
}

// PodTemplateMetadata holds labels and annotations copied to every attempt's Pod.
type PodTemplateMetadata struct {
	// labels copied to every attempt's Pod. Keys under extraction.pybase.io/ are reserved for the operator.
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	// +kubebuilder:validation:XValidation:rule="self.all(k, !k.startsWith('extraction.pybase.io/'))",message="labels under extraction.pybase.io/ are reserved for the operator"
	Labels map[string]string `json:"labels,omitempty"`

	// annotations copied to every attempt's Pod. Keys under extraction.pybase.io/ are reserved for the operator.
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	// +kubebuilder:validation:XValidation:rule="self.all(k, !k.startsWith('extraction.pybase.io/'))",message="annotations under extraction.pybase.io/ are reserved for the operator"
	Annotations map[string]string `json:"annotations,omitempty"`
}

// RetryPolicy decides which failures are retried and when.
type RetryPolicy struct {
	// maxRetries is how many counted retries a job may make before it fails.
	// +optional
	// +kubebuilder:default=3
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=10
	MaxRetries *int32 `json:"maxRetries,omitempty"`

	// maxDisruptions is how many disruptions (eviction, preemption, node loss, a
	// Pod deleted under a running attempt) may be retried without spending
	// maxRetries. Disruptions beyond it count as ordinary retries.
	// +optional
	// +kubebuilder:default=5
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=20
	MaxDisruptions *int32 `json:"maxDisruptions,omitempty"`

	// backoff sets the wait before each retry.
	// +optional
	// +kubebuilder:default={}
	Backoff Backoff `json:"backoff,omitzero"`

	// retryAfter says what to do with the wait a failed extractor passes on
	// from its service (a "Retry-After:" line in its termination message):
	// Honor waits the longer of the backoff and that wait, capped at
	// maxRetryAfter, with the backoff's jitter on the result; Ignore waits the
	// backoff alone. A hint never adds a retry and never shortens the backoff.
	// +optional
	// +kubebuilder:default=Honor
	RetryAfter RetryAfterPolicy `json:"retryAfter,omitempty"`

	// maxRetryAfter caps the wait a Retry-After hint may ask for, as a Go
	// duration such as "10m"; without it, backoff.max caps it.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s') && duration(self) <= duration('168h')",message="maxRetryAfter must be a positive duration of at most 168h"
	MaxRetryAfter *metav1.Duration `json:"maxRetryAfter,omitempty"`

	// rules are checked in order before the built-in classification; the first
	// rule that matches a failure decides its action.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=20
	Rules []RetryRule `json:"rules,omitempty"`
}

// RetryAfterPolicy is what a job does with the Retry-After hint of a failure.
// +kubebuilder:validation:Enum=Honor;Ignore
type RetryAfterPolicy string

const (
	// RetryAfterHonor waits at least as long as the hint asks, up to maxRetryAfter.
	RetryAfterHonor RetryAfterPolicy = "Honor"
	// RetryAfterIgnore waits the backoff alone.
	RetryAfterIgnore RetryAfterPolicy = "Ignore"
)

// Backoff sets the wait before retry n (1-based): base × multiplier^(n−1),
// capped at max, plus up to jitterPercent % of it at random.
type Backoff struct {
	// base is the wait before the first retry, and before every retry after a
	// disruption, as a Go duration such as "30s".
	// +optional
	// +kubebuilder:default="30s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s') && duration(self) <= duration('24h')",message="base must be a positive duration of at most 24h"
	Base metav1.Duration `json:"base,omitzero"`

	// multiplier grows the wait from one retry to the next.
	// +optional
	// +kubebuilder:default=4
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10
	Multiplier int32 `json:"multiplier,omitempty"`

	// max caps the wait before jitter, as a Go duration such as "1h".
	// +optional
	// +kubebuilder:default="1h"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s') && duration(self) <= duration('168h')",message="max must be a positive duration of at most 168h"
	Max metav1.Duration `json:"max,omitzero"`

	// jitterPercent adds a random 0 to jitterPercent % to each wait, so that jobs
	// failing together do not retry together.
	// +optional
	// +kubebuilder:default=25
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	JitterPercent *int32 `json:"jitterPercent,omitempty"`
}

// RuleAction is what a matching retry rule does with a failure.
// +kubebuilder:validation:Enum=Retry;Fail;Ignore
type RuleAction string

const (
	// RuleActionRetry retries the failure, spending maxRetries.
	RuleActionRetry RuleAction = "Retry"
	// RuleActionFail fails the job at once.
	RuleActionFail RuleAction = "Fail"
	// RuleActionIgnore retries the failure without spending maxRetries; it
	// counts against maxDisruptions instead.
	RuleActionIgnore RuleAction = "Ignore"
)

// RetryRule matches failures by exactly one of errorTypes, exitCodes or reasons.
// +kubebuilder:validation:XValidation:rule="[has(self.errorTypes), has(self.exitCodes), has(self.reasons)].filter(x, x).size() == 1",message="a rule needs exactly one of errorTypes, exitCodes or reasons"
type RetryRule struct {
	// errorTypes match when one of them is a case-insensitive substring of the
	// failure's error type, as in the built-in table.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=64
	ErrorTypes []string `json:"errorTypes,omitempty"`

	// exitCodes match the extractor container's exit code.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=255
	// +kubebuilder:validation:items:Minimum=1
	// +kubebuilder:validation:items:Maximum=255
	ExitCodes []int32 `json:"exitCodes,omitempty"`

	// reasons match, case-insensitively, the Pod's status reason, the
	// container's terminated or waiting reason, and the types of the Pod's true
	// conditions: OOMKilled, DeadlineExceeded, Evicted, DisruptionTarget, ...
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=128
	Reasons []string `json:"reasons,omitempty"`

	// action is what happens to a matching failure: Retry, Fail, or Ignore
	// (retry without spending maxRetries; counts against maxDisruptions).
	// +required
	Action RuleAction `json:"action"`
}

// Phase is where a job is in its life.
// +kubebuilder:validation:Enum=Pending;Queued;Running;Retrying;Succeeded;Failed;Cancelled
type Phase string

// The phases of an ExtractionJob. A Queued job is ready to start an attempt,
// new or after its backoff, but waits without a Pod because its class is at
// maxRunning.
const (
	PhasePending   Phase = "Pending"
	PhaseQueued    Phase = "Queued"
	PhaseRunning   Phase = "Running"
	PhaseRetrying  Phase = "Retrying"
	PhaseSucceeded Phase = "Succeeded"
	PhaseFailed    Phase = "Failed"
	PhaseCancelled Phase = "Cancelled"
)

// Phases lists every Phase, in the order of the schema's enum, for whatever
// lists them all: the jobs gauge, the health check, the plugin.
var Phases = []Phase{PhasePending, PhaseQueued, PhaseRunning, PhaseRetrying, PhaseSucceeded, PhaseFailed, PhaseCancelled}

// Finished reports whether the phase is terminal.
func (p Phase) Finished() bool {
	return p == PhaseSucceeded || p == PhaseFailed || p == PhaseCancelled
}

// FailureClass says how the operator treats a failure.
// +kubebuilder:validation:Enum=Retryable;Permanent;Disruption
type FailureClass string

const (
	// ClassRetryable failures are retried after a growing backoff, spending maxRetries.
	ClassRetryable FailureClass = "Retryable"
	// ClassPermanent failures fail the job at once.
	ClassPermanent FailureClass = "Permanent"
	// ClassDisruption failures were caused by the cluster, not the extraction;
	// they are retried after base without spending maxRetries, up to maxDisruptions.
	ClassDisruption FailureClass = "Disruption"
)

// Failure describes why an attempt failed.
type Failure struct {
	// errorType is the extractor's error type, such as ConnectionError, or one
	// the operator derived from the Pod, such as OOMKilled or PodEvicted.
	ErrorType string `json:"errorType"`
	// class is how the failure was treated.
	Class FailureClass `json:"class"`
	// exitCode of the extractor container, when it ran and exited.
	// +optional
	ExitCode *int32 `json:"exitCode,omitempty"`
	// reason the Pod or container gave, such as OOMKilled or Evicted.
	// +optional
	Reason string `json:"reason,omitempty"`
	// message for people, from the extractor's termination message or the Pod.
	// +optional
	Message string `json:"message,omitempty"`
	// retryAfter is the wait the extractor passed on from its service with a
	// Retry-After hint, as it asked for it, before maxRetryAfter caps it.
	// +optional
	RetryAfter *metav1.Duration `json:"retryAfter,omitempty"`
}

// AttemptOutcome is how an attempt ended.
// +kubebuilder:validation:Enum=Running;Succeeded;Failed;Cancelled
type AttemptOutcome string

// The outcomes of an attempt.
const (
	OutcomeRunning   AttemptOutcome = "Running"
	OutcomeSucceeded AttemptOutcome = "Succeeded"
	OutcomeFailed    AttemptOutcome = "Failed"
	OutcomeCancelled AttemptOutcome = "Cancelled"
)

// AttemptRecord is one attempt in the job's history.
type AttemptRecord struct {
	// attempt is the attempt's number, starting at 1.
	Attempt int32 `json:"attempt"`
	// podName is the attempt's Pod.
	PodName string `json:"podName"`
	// startTime is when the attempt's Pod was created.
	StartTime metav1.Time `json:"startTime"`
	// finishTime is when the operator saw the attempt end.
	// +optional
	FinishTime *metav1.Time `json:"finishTime,omitempty"`
	// outcome of the attempt.
	Outcome AttemptOutcome `json:"outcome"`
	// errorType of a failed attempt.
	// +optional
	ErrorType string `json:"errorType,omitempty"`
	// class of a failed attempt.
	// +optional
	Class FailureClass `json:"class,omitempty"`
	// exitCode of the extractor container, when it exited.
	// +optional
	ExitCode *int32 `json:"exitCode,omitempty"`
	// memory the attempt's extractor container ran with, as both its request
	// and its limit, when its class sets a memory limit. It grows after
	// OOMKilled attempts when the class has onOOMKilled.
	// +optional
	Memory *resource.Quantity `json:"memory,omitempty"`
	// parked says the attempt failed while its class's circuit breaker was
	// open, with one of the breaker's error types: it spent no retry, and the
	// job waited in Queued for the circuit to close.
	// +optional
	Parked bool `json:"parked,omitempty"`
}

// MaxAttemptRecords bounds status.attempts so that a long-lived job's status stays small.
const MaxAttemptRecords = 10

// ExtractionJobStatus is what the operator observed and decided.
type ExtractionJobStatus struct {
	// phase is where the job is in its life.
	// +optional
	Phase Phase `json:"phase,omitempty"`

	// extractorClassName is the ExtractorClass that runs the job's attempts:
	// the one spec.extractorClassName names, or the default class chosen for
	// the job's format.
	// +optional
	ExtractorClassName string `json:"extractorClassName,omitempty"`

	// retryCount is how many counted retries were scheduled. A manual retry resets it.
	// +optional
	RetryCount int32 `json:"retryCount,omitempty"`

	// disruptionCount is how many disruptions were retried without spending
	// maxRetries. A manual retry resets it.
	// +optional
	DisruptionCount int32 `json:"disruptionCount,omitempty"`

	// oomKilledCount is how many of the job's attempts were OOMKilled since
	// it started or since its last manual retry; an ExtractorClass with
	// onOOMKilled gives the next attempt memoryFactor^oomKilledCount times
	// its memory, up to maxMemory.
	// +optional
	OOMKilledCount int32 `json:"oomKilledCount,omitempty"`

	// attempt is the number of the latest attempt. It is never reset, so Pod
	// names stay unique.
	// +optional
	Attempt int32 `json:"attempt,omitempty"`

	// retries shows retryCount/maxRetries, for kubectl get.
	// +optional
	Retries string `json:"retries,omitempty"`

	// nextRetryAt is when the next attempt starts, while the job is Retrying,
	// to the microsecond. It is rounded up, never earlier than the backoff.
	// Values with whole seconds, as earlier versions wrote, are read as well.
	// +optional
	NextRetryAt *PreciseTime `json:"nextRetryAt,omitempty"`

	// podName is the latest attempt's Pod.
	// +optional
	PodName string `json:"podName,omitempty"`

	// startTime is when the operator first picked the job up.
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`

	// completionTime is when the job reached Succeeded, Failed or Cancelled.
	// +optional
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`

	// lastFailure is why the latest failed attempt failed.
	// +optional
	LastFailure *Failure `json:"lastFailure,omitempty"`

	// attempts holds the most recent attempts, oldest first, at most 10.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=10
	Attempts []AttemptRecord `json:"attempts,omitempty"`

	// message says in a sentence where the job stands.
	// +optional
	Message string `json:"message,omitempty"`

	// result is the extractor's success summary: the JSON object it wrote as
	// its termination message, at most 4 KiB.
	// +optional
	// +kubebuilder:pruning:PreserveUnknownFields
	// +kubebuilder:validation:Type=object
	// +kubebuilder:validation:Schemaless
	Result *runtime.RawExtension `json:"result,omitempty"`

	// conditions hold Complete and Failed as on batch/v1 Jobs, and the kstatus
	// set Ready, Reconciling and Stalled.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// observedGeneration is the generation of the spec that the operator last
	// finished handling.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// lastHandledRetryRequest is the latest value of the
	// extraction.pybase.io/retry-requested-at annotation that the operator handled.
	// +optional
	LastHandledRetryRequest string `json:"lastHandledRetryRequest,omitempty"`
}

// ExtractionJob runs one file extraction, retrying failed attempts by policy.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=ej,categories=all
// +kubebuilder:selectablefield:JSONPath=`.spec.format`
// +kubebuilder:selectablefield:JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Format",type=string,JSONPath=`.spec.format`
// +kubebuilder:printcolumn:name="Retries",type=string,JSONPath=`.status.retries`
// +kubebuilder:printcolumn:name="Next Retry",type=string,JSONPath=`.status.nextRetryAt`
// +kubebuilder:printcolumn:name="Error",type=string,JSONPath=`.status.lastFailure.errorType`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Class",type=string,JSONPath=`.status.extractorClassName`,priority=1
// +kubebuilder:printcolumn:name="Message",type=string,JSONPath=`.status.message`,priority=1
type ExtractionJob struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is what the job's author asks for.
	// +required
	Spec ExtractionJobSpec `json:"spec"`

	// status is what the operator observed and decided.
	// +optional
	Status ExtractionJobStatus `json:"status,omitempty"`
}

// ExtractionJobList is a list of ExtractionJobs.
// +kubebuilder:object:root=true
type ExtractionJobList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ExtractionJob `json:"items"`
}

func init() {
	SchemeBuilder.Register(&ExtractionJob{}, &ExtractionJobList{})
}
