package v1alpha1

import "github.com/pybase/extraction-operator/api/podcontract"

// Labels and annotations the operator reads or writes.
const (
	// RetryRequestAnnotation holds an opaque token; a new value asks the
	// operator to retry a Failed or Cancelled job. The operator copies the
	// handled value to status.lastHandledRetryRequest and never writes the
	// annotation itself.
	RetryRequestAnnotation = "extraction.pybase.io/retry-requested-at"

	// JobUIDLabel on a Pod names the UID of the job that owns it. A UID, unlike
	// a name, always fits a label value and never repeats.
	JobUIDLabel = "extraction.pybase.io/job-uid"

	// AttemptLabel on a Pod holds the attempt number it runs.
	AttemptLabel = "extraction.pybase.io/attempt"

	// ExtractorClassLabel on a Pod names the ExtractorClass that runs it, so
	// the running attempts of a class are counted from the Pods themselves.
	ExtractorClassLabel = "extraction.pybase.io/extractor-class"

	// AttemptTrackingFinalizer keeps an attempt's Pod, and with it the
	// attempt's outcome, until the operator has recorded that outcome in the
	// job's status, as batch/v1 Jobs do with batch.kubernetes.io/job-tracking.
	// Without it, a Pod that finished and was deleted while the operator was
	// down would be indistinguishable from one deleted mid-run, and a finished
	// extraction would run again.
	AttemptTrackingFinalizer = "extraction.pybase.io/attempt-tracking"
)

// Condition types. Complete and Failed are those of batch/v1 Jobs; Ready,
// Reconciling and Stalled are the kstatus set. Complete, Failed, Reconciling
// and Stalled are present only while True.
const (
	ConditionComplete    = "Complete"
	ConditionFailed      = "Failed"
	ConditionReady       = "Ready"
	ConditionReconciling = "Reconciling"
	ConditionStalled     = "Stalled"
)

// Reasons of conditions and events.
const (
	ReasonPending            = "Pending"
	ReasonRunning            = "Running"
	ReasonRetrying           = "Retrying"
	ReasonSucceeded          = "Succeeded"
	ReasonPermanentError     = "PermanentError"
	ReasonMaxRetriesExceeded = "MaxRetriesExceeded"
	ReasonCancelled          = "Cancelled"

	ReasonAttemptStarted      = "AttemptStarted"
	ReasonAttemptFailed       = "AttemptFailed"
	ReasonRetryScheduled      = "RetryScheduled"
	ReasonManualRetry         = "ManualRetry"
	ReasonRetryRequestIgnored = "RetryRequestIgnored"
	ReasonCancelIgnored       = "CancelIgnored"
	ReasonPodCreateFailed     = "PodCreateFailed"
	ReasonResultIgnored       = "ResultIgnored"
)

// Error types the operator derives from a Pod rather than reading them from
// the extractor's termination message.
const (
	// ErrorTypeTimeout is the contract's own TimeoutError, so that an
	// attemptTimeout and an extractor's timeout read alike.
	ErrorTypeTimeout          = podcontract.TimeoutError
	ErrorTypeOOMKilled        = "OOMKilled"
	ErrorTypePodEvicted       = "PodEvicted"
	ErrorTypePodPreempted     = "PodPreempted"
	ErrorTypePodDisrupted     = "PodDisrupted"
	ErrorTypeNodeLost         = "NodeLost"
	ErrorTypePodDeleted       = "PodDeleted"
	ErrorTypeInvalidImageName = "InvalidImageName"
	ErrorTypeImagePull        = "ImagePullError"
	ErrorTypeContainerConfig  = "CreateContainerConfigError"
	ErrorTypeInvalidPodSpec   = "InvalidPodSpec"
	ErrorTypeUnknown          = "UnknownError"
)

// Reasons and error types of ExtractorClasses and the queue.
const (
	// ReasonQueued says a job waits without a Pod because its class is at maxRunning.
	ReasonQueued = "Queued"
	// ReasonExtractorClassNotFound says the class a job names, or a default for its format, does not exist.
	ReasonExtractorClassNotFound = "ExtractorClassNotFound"
	// ReasonExtractorClassNotAllowed says the job's class does not admit the job's namespace.
	ReasonExtractorClassNotAllowed = "ExtractorClassNotAllowed"
	// ErrorTypeExtractorClassNotAllowed is the failure of a job whose class does not admit its namespace.
	ErrorTypeExtractorClassNotAllowed = "ExtractorClassNotAllowed"
	// ReasonFormatNotServed says the job's class does not serve the job's format.
	ReasonFormatNotServed = "FormatNotServed"
	// ReasonServiceAccountNotFound says the class's serviceAccountName is missing from the job's namespace.
	ReasonServiceAccountNotFound = "ServiceAccountNotFound"
	// ErrorTypeScratchSpaceExceeded is a retryable failure: the attempt was evicted for filling its /tmp past scratchSizeLimit.
	ErrorTypeScratchSpaceExceeded = "ScratchSpaceExceeded"
	// ErrorTypeUnschedulable is a retryable failure: the attempt's Pod stayed unschedulable past the class's schedulingTimeout.
	ErrorTypeUnschedulable = "Unschedulable"
	// ReasonSchedulingGated says the attempt's Pod is held by a scheduling gate, such as Kueue's admission gate.
	ReasonSchedulingGated = "SchedulingGated"
	// ReasonCompetingDefaults says another default class serves the same format and admits the same namespaces.
	ReasonCompetingDefaults = "CompetingDefaults"
)

// The circuit breaker of ExtractorClasses.
const (
	// CircuitResetRequestAnnotation on a class holds an opaque token; a new
	// value closes the class's circuit breaker, as the retry annotation
	// restarts a job.
	CircuitResetRequestAnnotation = "extraction.pybase.io/circuit-reset-requested-at"
	// CircuitProbeLabel marks the attempt Pods that probe a half-open
	// circuit, so that the running probes are counted from the Pods that exist.
	CircuitProbeLabel = "extraction.pybase.io/probe"
	// ConditionCircuitOpen is True on a class while its circuit breaker is
	// open or half-open; it is absent otherwise.
	ConditionCircuitOpen = "CircuitOpen"
	// ReasonCircuitOpen says a class's circuit opened: the service failed
	// consecutiveFailures times in a row, or a probe failed.
	ReasonCircuitOpen = "CircuitOpen"
	// ReasonCircuitHalfOpen says a class's circuit lets probes through.
	ReasonCircuitHalfOpen = "CircuitHalfOpen"
	// ReasonCircuitClosed says a class's circuit closed: a probe reached the service.
	ReasonCircuitClosed = "CircuitClosed"
	// ReasonCircuitReset says an administrator closed a class's circuit with the reset annotation.
	ReasonCircuitReset = "CircuitReset"
	// ReasonAttemptParked says a job's failed attempt spent no retry: its
	// class's circuit is open, and the job waits for it in Queued.
	ReasonAttemptParked = "AttemptParked"
)
