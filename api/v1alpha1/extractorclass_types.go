package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ExtractorClassSpec is how a cluster administrator runs the extractions of
// the jobs that use the class. A job's author only picks a class by name.
// +kubebuilder:validation:XValidation:rule="!has(self.onOOMKilled) || (has(self.resources) && has(self.resources.limits) && 'memory' in self.resources.limits)",message="onOOMKilled needs a memory limit in resources.limits to grow from",fieldPath=".onOOMKilled",reason="FieldValueRequired"
// +kubebuilder:validation:XValidation:rule="!has(self.onOOMKilled) || !has(self.resources) || !has(self.resources.limits) || !('memory' in self.resources.limits) || quantity(string(self.resources.limits['memory'])).compareTo(quantity(string(self.onOOMKilled.maxMemory))) <= 0",message="onOOMKilled.maxMemory must be at least resources.limits.memory",fieldPath=".onOOMKilled.maxMemory"
// +kubebuilder:validation:XValidation:rule="!has(self.maxRunning) || !has(self.maxRunningPerNamespace) || self.maxRunningPerNamespace <= self.maxRunning",message="maxRunningPerNamespace must be at most maxRunning",fieldPath=".maxRunningPerNamespace"
type ExtractorClassSpec struct {
	// formats are the job formats this class serves. A job that names the
	// class must have one of them.
	// +required
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=5
	Formats []Format `json:"formats"`

	// default makes this class the one used by jobs of its formats that name
	// no class. A job gets the oldest default class (then by name) that serves
	// its format and admits its namespace, so tenants can have defaults of
	// their own; where two such classes compete, both say so in a condition.
	// +optional
	// +kubebuilder:default=false
	Default bool `json:"default,omitempty"`

	// image is the extractor's container image.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	Image string `json:"image"`

	// imagePullPolicy of the extractor container: Always, IfNotPresent or
	// Never. Unset leaves the Kubernetes default for the image's tag.
	// +optional
	// +kubebuilder:validation:Enum=Always;IfNotPresent;Never
	ImagePullPolicy corev1.PullPolicy `json:"imagePullPolicy,omitempty"`

	// imagePullSecrets name Secrets in the job's namespace that the kubelet
	// uses to pull the image.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=8
	ImagePullSecrets []corev1.LocalObjectReference `json:"imagePullSecrets,omitempty"`

	// command replaces the image's entrypoint.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	Command []string `json:"command,omitempty"`

	// args replace the image's default arguments.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	Args []string `json:"args,omitempty"`

	// env sets environment variables of the extractor container, for
	// settings the administrator owns: plain values, or keys of a ConfigMap in
	// the job's namespace. Secret keys, field and resource references are not
	// accepted: a Secret would be read in the job's namespace while the job's
	// author chooses source.url, so any author could send it to a server of
	// their own. Credentials come through serviceAccountName (workload
	// identity) or the job's own source.secretRef.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=64
	Env []EnvVar `json:"env,omitempty"`

	// resources are the extractor container's requests and limits, as in a
	// container. A memory limit is where onOOMKilled starts from.
	// +optional
	Resources *ResourceRequirements `json:"resources,omitempty"`

	// scratchSizeLimit is the sizeLimit of the emptyDir mounted at /tmp. An
	// attempt evicted for exceeding it fails with the retryable error type
	// ScratchSpaceExceeded. Unset leaves the emptyDir unbounded.
	// +optional
	// +kubebuilder:validation:XValidation:rule="quantity(string(self)).isGreaterThan(quantity('0'))",message="scratchSizeLimit must be positive"
	ScratchSizeLimit *resource.Quantity `json:"scratchSizeLimit,omitempty"`

	// onOOMKilled grows the memory of the attempts after a job's attempt was
	// OOMKilled. Unset retries with the same memory.
	// +optional
	OnOOMKilled *OnOOMKilled `json:"onOOMKilled,omitempty"`

	// nodeSelector must match a node's labels for an attempt's Pod to run there.
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`

	// tolerations of the attempt Pods.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`

	// affinity of the attempt Pods.
	// +optional
	Affinity *corev1.Affinity `json:"affinity,omitempty"`

	// topologySpreadConstraints of the attempt Pods.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=8
	TopologySpreadConstraints []corev1.TopologySpreadConstraint `json:"topologySpreadConstraints,omitempty"`

	// priorityClassName of the attempt Pods.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	PriorityClassName string `json:"priorityClassName,omitempty"`

	// runtimeClassName of the attempt Pods, such as a gVisor RuntimeClass for
	// untrusted files.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	RuntimeClassName *string `json:"runtimeClassName,omitempty"`

	// serviceAccountName runs the attempt Pods as this ServiceAccount of the
	// job's namespace, for workload identity to object storage. A job whose
	// namespace lacks it stays Pending with a condition that says so. Unset
	// uses the namespace's default ServiceAccount.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	ServiceAccountName string `json:"serviceAccountName,omitempty"`

	// automountServiceAccountToken mounts the ServiceAccount's token into the
	// attempt Pods. Workload identity that reads a projected token needs it.
	// +optional
	// +kubebuilder:default=false
	AutomountServiceAccountToken bool `json:"automountServiceAccountToken,omitempty"`

	// runAsUser is the non-zero UID the extractor runs as, for images built
	// for another UID. The rest of the security context stays the operator's,
	// so attempt Pods still pass the restricted Pod Security Standard.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=2147483647
	RunAsUser *int64 `json:"runAsUser,omitempty"`

	// runAsGroup is the non-zero GID the extractor runs as.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=2147483647
	RunAsGroup *int64 `json:"runAsGroup,omitempty"`

	// maxRunning caps how many attempts of the class exist at once, across the
	// cluster. A job ready to start an attempt while the class is full waits in
	// phase Queued, first come, first served. Unset means no cap.
	// +optional
	// +kubebuilder:validation:Minimum=1
	MaxRunning *int32 `json:"maxRunning,omitempty"`

	// maxRunningPerNamespace caps the attempts of the class in one namespace,
	// so that one tenant cannot take every slot. A namespace at its cap is
	// skipped by the queue, not waited on. At most maxRunning.
	// +optional
	// +kubebuilder:validation:Minimum=1
	MaxRunningPerNamespace *int32 `json:"maxRunningPerNamespace,omitempty"`

	// namespaceSelector picks the namespaces whose jobs may use the class.
	// Unset admits every namespace. A job in a namespace the class does not
	// admit fails with ExtractorClassNotAllowed.
	// +optional
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`

	// schedulingTimeout fails an attempt whose Pod stays unschedulable this
	// long with the retryable error type Unschedulable, as a Go duration such
	// as "10m". Unset waits as long as the attempt may run.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s') && duration(self) <= duration('168h')",message="schedulingTimeout must be between 1s and 168h"
	SchedulingTimeout *metav1.Duration `json:"schedulingTimeout,omitempty"`

	// circuitBreaker stops the attempts of every job of the class while the
	// service behind the extractor is down, so that an outage costs no job its
	// retries. Unset leaves the breaker off.
	// +optional
	CircuitBreaker *CircuitBreaker `json:"circuitBreaker,omitempty"`
}

// CircuitBreaker opens after consecutiveFailures attempts of the class in a
// row fail with one of errorTypes as the extractor reports them. While it is
// open no attempt of the class starts; after openDuration, probes attempts
// try the service, and their outcome closes the circuit or opens it again for
// twice as long.
type CircuitBreaker struct {
	// errorTypes are the failures that mean the service is down, matched as
	// the built-in table matches them: case-insensitive substrings.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=128
	// +kubebuilder:default={"ConnectionError","ServiceUnavailable","RateLimitExceeded","TimeoutError","S3ConnectionError","Werk24Timeout"}
	ErrorTypes []string `json:"errorTypes,omitempty"`

	// consecutiveFailures in a row open the circuit.
	// +optional
	// +kubebuilder:default=5
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	ConsecutiveFailures int32 `json:"consecutiveFailures,omitempty"`

	// openDuration is how long the circuit stays open before it lets probes
	// through, as a Go duration. It doubles after each failed probe, up to
	// maxOpenDuration.
	// +optional
	// +kubebuilder:default="1m"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s') && duration(self) <= duration('24h')",message="openDuration must be between 1s and 24h"
	OpenDuration *metav1.Duration `json:"openDuration,omitempty"`

	// maxOpenDuration caps the doubled openDuration and the service's
	// Retry-After hints.
	// +optional
	// +kubebuilder:default="30m"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s') && duration(self) <= duration('24h')",message="maxOpenDuration must be between 1s and 24h"
	MaxOpenDuration *metav1.Duration `json:"maxOpenDuration,omitempty"`

	// probes is how many attempts may try the service at once while the
	// circuit is half-open.
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	Probes int32 `json:"probes,omitempty"`

	// rampUp spreads the start of the queued attempts over this long after
	// the circuit closes, so that the recovering service is not flooded.
	// +optional
	// +kubebuilder:default="30s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule="duration(self) <= duration('1h')",message="rampUp must be at most 1h"
	RampUp *metav1.Duration `json:"rampUp,omitempty"`
}

// CircuitState is where a class's circuit breaker is.
// +kubebuilder:validation:Enum=Closed;Open;HalfOpen
type CircuitState string

const (
	// CircuitClosed lets attempts run.
	CircuitClosed CircuitState = "Closed"
	// CircuitOpen starts no attempt of the class.
	CircuitOpen CircuitState = "Open"
	// CircuitHalfOpen lets probes attempts try the service.
	CircuitHalfOpen CircuitState = "HalfOpen"
)

// CircuitStatus is the state of a class's circuit breaker. It is written
// before the operator acts on it, so that a restarted operator finds it as it
// was. The count of failures below consecutiveFailures is kept in memory only.
type CircuitStatus struct {
	// state of the circuit.
	// +optional
	State CircuitState `json:"state,omitempty"`
	// since is when the circuit entered its state.
	// +optional
	Since *metav1.Time `json:"since,omitempty"`
	// reopenAt is when an open circuit lets its probes through.
	// +optional
	ReopenAt *metav1.Time `json:"reopenAt,omitempty"`
	// openCount is how many times the circuit opened since it last closed;
	// each opening after the first lasts twice as long as the one before.
	// +optional
	OpenCount int32 `json:"openCount,omitempty"`
	// lastErrorType is the error type of the failure that last opened the circuit.
	// +optional
	LastErrorType string `json:"lastErrorType,omitempty"`
	// lastMessage is the message of the failure that last opened the circuit.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	LastMessage string `json:"lastMessage,omitempty"`
	// lastHandledResetRequest is the last value of the
	// extraction.pybase.io/circuit-reset-requested-at annotation the operator
	// handled.
	// +optional
	LastHandledResetRequest string `json:"lastHandledResetRequest,omitempty"`
}

// EnvVar is an environment variable the class sets: a value, or a key of a
// ConfigMap. It is corev1.EnvVar without the sources a job's author could
// abuse (see ExtractorClassSpec.Env).
// +kubebuilder:validation:XValidation:rule="!(has(self.value) && has(self.valueFrom))",message="env needs value or valueFrom, not both"
type EnvVar struct {
	// name of the variable. Names starting with EXTRACTION_ are the operator's.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z][-._a-zA-Z0-9]*$`
	// +kubebuilder:validation:XValidation:rule="!self.startsWith('EXTRACTION_')",message="env names starting with EXTRACTION_ are reserved for the operator"
	Name string `json:"name"`

	// value of the variable.
	// +optional
	// +kubebuilder:validation:MaxLength=4096
	Value string `json:"value,omitempty"`

	// valueFrom reads the value from a ConfigMap key.
	// +optional
	ValueFrom *EnvVarSource `json:"valueFrom,omitempty"`
}

// EnvVarSource is where an environment variable's value comes from. Only
// configMapKeyRef exists; since it is required, a valueFrom holding only a
// secretKeyRef, fieldRef or resourceFieldRef is refused whatever field
// validation the client asks for (the unknown field is pruned, and
// configMapKeyRef is then missing).
type EnvVarSource struct {
	// configMapKeyRef selects a key of a ConfigMap in the job's namespace.
	// +required
	ConfigMapKeyRef *corev1.ConfigMapKeySelector `json:"configMapKeyRef"`
}

// ResourceRequirements are a container's requests and limits, without claims:
// attempt Pods have no resource claims to refer to. The schema compares
// requests with limits for cpu, memory and ephemeral-storage only: comparing
// every resource would exceed CEL's cost budget, since quantities are strings
// of unbounded length. Pod validation checks the others.
// +kubebuilder:validation:XValidation:rule="!has(self.requests) || !has(self.limits) || ['cpu', 'memory', 'ephemeral-storage'].all(k, !(k in self.requests) || !(k in self.limits) || quantity(string(self.requests[k])).compareTo(quantity(string(self.limits[k]))) <= 0)",message="resources.requests of cpu, memory and ephemeral-storage must not exceed resources.limits"
type ResourceRequirements struct {
	// limits are the most of each resource the extractor may use.
	// +optional
	// +kubebuilder:validation:MaxProperties=16
	Limits corev1.ResourceList `json:"limits,omitempty"`

	// requests are the resources the scheduler reserves for the extractor.
	// +optional
	// +kubebuilder:validation:MaxProperties=16
	Requests corev1.ResourceList `json:"requests,omitempty"`
}

// OnOOMKilled grows an attempt's memory after OOMKilled attempts. An
// attempt's memory request and limit are min(maxMemory, resources.limits.memory
// × memoryFactor^k), where k counts the job's OOMKilled attempts since it
// started or since its last manual retry. Other failures leave k alone.
type OnOOMKilled struct {
	// memoryFactor multiplies the memory after each OOMKilled attempt, from 2 to 4.
	// +required
	// +kubebuilder:validation:Minimum=2
	// +kubebuilder:validation:Maximum=4
	MemoryFactor int32 `json:"memoryFactor"`

	// maxMemory caps the grown memory. It must be at least resources.limits.memory.
	// +required
	MaxMemory resource.Quantity `json:"maxMemory"`
}

// ExtractorClassStatus is what the operator observed of the class.
type ExtractorClassStatus struct {
	// running is how many attempts of the class exist. Written at most every
	// few seconds, and only when it changes. Zero is written out, so that
	// kubectl get shows 0 rather than nothing.
	// +optional
	Running int32 `json:"running"`

	// queued is how many jobs wait for a slot of the class. Written at most
	// every few seconds, and only when it changes.
	// +optional
	Queued int32 `json:"queued"`

	// circuit is the state of the class's circuit breaker, when it has one.
	// +optional
	Circuit *CircuitStatus `json:"circuit,omitempty"`

	// conditions hold the kstatus set: Ready, Reconciling and Stalled, and
	// CircuitOpen while the circuit breaker is open or half-open.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// observedGeneration is the generation of the spec that the operator last
	// finished handling.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
}

// ExtractorClass is an administrator's profile for running extractions: the
// image, its resources and placement, memory growth after OOMKilled, and a
// cap on concurrent attempts. Jobs name a class, or get their format's default.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=ec
// +kubebuilder:printcolumn:name="Formats",type=string,JSONPath=`.spec.formats`
// +kubebuilder:printcolumn:name="Default",type=boolean,JSONPath=`.spec.default`
// +kubebuilder:printcolumn:name="Running",type=integer,JSONPath=`.status.running`
// +kubebuilder:printcolumn:name="Max",type=integer,JSONPath=`.spec.maxRunning`
// +kubebuilder:printcolumn:name="Queued",type=integer,JSONPath=`.status.queued`
// +kubebuilder:printcolumn:name="Circuit",type=string,JSONPath=`.status.circuit.state`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Per Namespace",type=integer,JSONPath=`.spec.maxRunningPerNamespace`,priority=1
// +kubebuilder:printcolumn:name="Image",type=string,JSONPath=`.spec.image`,priority=1
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`,priority=1
type ExtractorClass struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is how the class runs extractions.
	// +required
	Spec ExtractorClassSpec `json:"spec"`

	// status is what the operator observed of the class.
	// +optional
	Status ExtractorClassStatus `json:"status,omitempty"`
}

// ExtractorClassList is a list of ExtractorClasses.
// +kubebuilder:object:root=true
type ExtractorClassList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ExtractorClass `json:"items"`
}

func init() {
	SchemeBuilder.Register(&ExtractorClass{}, &ExtractorClassList{})
}
