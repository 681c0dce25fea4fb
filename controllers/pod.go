package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/pybase/extraction-operator/api/podcontract"
	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
)

const (
	extractorContainerName = "extractor"
	scratchVolumeName      = "scratch"
	scratchMountPath       = "/tmp"
	// extractorUID is the distroless "nonroot" user, so images built on it
	// run unchanged under the restricted Pod Security Standard.
	extractorUID = 65532
	maxPodName   = 63
)

// podName is deterministic in the job and the attempt, so a restarted operator
// finds the Pod it created instead of creating a second one. The hash of the
// job's UID keeps a job recreated under the same name away from its
// predecessor's Pods.
func podName(job *ejv1.ExtractionJob, attempt int32) string {
	h := fnv.New32a()
	h.Write([]byte(job.UID))
	suffix := fmt.Sprintf("-%08x-%d", h.Sum32(), attempt)
	prefix := job.Name
	if len(prefix)+len(suffix) > maxPodName {
		prefix = strings.TrimRight(prefix[:maxPodName-len(suffix)], "-.")
	}
	return prefix + suffix
}

// attemptPod builds the Pod of one attempt from the job and its class. What
// runs comes from the class, which only administrators write, never from
// the job: the job's author picks a class by name. The security context
// stays the operator's whatever the class says (only the UID and GID are the
// class's), so every attempt Pod passes the restricted Pod Security Standard.
func attemptPod(job *ejv1.ExtractionJob, attempt int32, class *ejv1.ExtractorClass) (*corev1.Pod, error) {
	options, err := json.Marshal(job.Spec.Options)
	if err != nil {
		return nil, fmt.Errorf("encoding spec.options: %w", err)
	}
	if job.Spec.Options == nil {
		options = []byte("{}")
	}
	spec := class.Spec.DeepCopy()

	labels, annotations := map[string]string{}, map[string]string{}
	if tmpl := job.Spec.PodTemplate; tmpl != nil {
		maps.Copy(labels, tmpl.Metadata.Labels)
		maps.Copy(annotations, tmpl.Metadata.Annotations)
	}
	labels[ejv1.JobUIDLabel] = string(job.UID)
	labels[ejv1.AttemptLabel] = strconv.Itoa(int(attempt))
	labels[ejv1.ExtractorClassLabel] = class.Name

	container := corev1.Container{
		Name:            extractorContainerName,
		Image:           spec.Image,
		ImagePullPolicy: spec.ImagePullPolicy,
		Command:         spec.Command,
		Args:            spec.Args,
		Env: append([]corev1.EnvVar{
			{Name: podcontract.EnvFormat, Value: string(job.Spec.Format)},
			{Name: podcontract.EnvSourceURL, Value: job.Spec.Source.URL},
			{Name: podcontract.EnvOptions, Value: string(options)},
			{Name: podcontract.EnvAttempt, Value: strconv.Itoa(int(attempt))},
		}, classEnv(spec.Env)...),
		Resources:                attemptResources(spec, job.Status.OOMKilledCount),
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
		SecurityContext: &corev1.SecurityContext{
			AllowPrivilegeEscalation: ptr.To(false),
			ReadOnlyRootFilesystem:   ptr.To(true),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		},
		VolumeMounts: []corev1.VolumeMount{{Name: scratchVolumeName, MountPath: scratchMountPath}},
	}
	if ref := job.Spec.Source.SecretRef; ref != nil {
		container.EnvFrom = []corev1.EnvFromSource{{
			SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: ref.Name}},
		}}
	}

	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:        podName(job, attempt),
			Namespace:   job.Namespace,
			Labels:      labels,
			Annotations: annotations,
			Finalizers:  []string{ejv1.AttemptTrackingFinalizer},
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(job,
				ejv1.GroupVersion.WithKind("ExtractionJob"))},
		},
		Spec: corev1.PodSpec{
			RestartPolicy:                corev1.RestartPolicyNever,
			ServiceAccountName:           spec.ServiceAccountName,
			AutomountServiceAccountToken: ptr.To(spec.AutomountServiceAccountToken),
			EnableServiceLinks:           ptr.To(false),
			ImagePullSecrets:             spec.ImagePullSecrets,
			NodeSelector:                 spec.NodeSelector,
			Tolerations:                  spec.Tolerations,
			Affinity:                     spec.Affinity,
			TopologySpreadConstraints:    spec.TopologySpreadConstraints,
			PriorityClassName:            spec.PriorityClassName,
			RuntimeClassName:             spec.RuntimeClassName,
			SecurityContext: &corev1.PodSecurityContext{
				RunAsNonRoot:   ptr.To(true),
				RunAsUser:      ptr.To(ptr.Deref(spec.RunAsUser, extractorUID)),
				RunAsGroup:     ptr.To(ptr.Deref(spec.RunAsGroup, extractorUID)),
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			Containers: []corev1.Container{container},
			Volumes: []corev1.Volume{{
				Name:         scratchVolumeName,
				VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: spec.ScratchSizeLimit}},
			}},
		},
	}
	if timeout := job.Spec.AttemptTimeout; timeout != nil {
		pod.Spec.ActiveDeadlineSeconds = ptr.To(int64(math.Ceil(timeout.Seconds())))
	}
	return pod, nil
}

// classEnv is the class's environment in the container's terms, with the
// contract's administrator variables set empty where the class leaves them
// unset: a container's env wins over its envFrom, so a key of the job's
// Secret, which the job's author writes, cannot set them.
func classEnv(env []ejv1.EnvVar) []corev1.EnvVar {
	out := make([]corev1.EnvVar, 0, len(env)+len(podcontract.AdminEnv()))
	for _, e := range env {
		v := corev1.EnvVar{Name: e.Name, Value: e.Value}
		if e.ValueFrom != nil {
			v.ValueFrom = &corev1.EnvVarSource{ConfigMapKeyRef: e.ValueFrom.ConfigMapKeyRef}
		}
		out = append(out, v)
	}
	for _, name := range podcontract.AdminEnv() {
		if !slices.ContainsFunc(env, func(e ejv1.EnvVar) bool { return e.Name == name }) {
			out = append(out, corev1.EnvVar{Name: name})
		}
	}
	return out
}

// attemptResources are the class's requests and limits, with the memory of
// attemptMemory as both request and limit when the class grows it after
// OOMKilled attempts.
func attemptResources(spec *ejv1.ExtractorClassSpec, oomKilled int32) corev1.ResourceRequirements {
	var resources corev1.ResourceRequirements
	if spec.Resources != nil {
		resources = corev1.ResourceRequirements{Limits: spec.Resources.Limits.DeepCopy(), Requests: spec.Resources.Requests.DeepCopy()}
	}
	if spec.OnOOMKilled == nil {
		return resources
	}
	memory := attemptMemory(spec, oomKilled)
	if memory == nil {
		return resources
	}
	if resources.Requests == nil {
		resources.Requests = corev1.ResourceList{}
	}
	resources.Limits[corev1.ResourceMemory] = *memory
	resources.Requests[corev1.ResourceMemory] = *memory
	return resources
}

// attemptMemory is the memory an attempt runs with after oomKilled OOMKilled
// attempts: min(maxMemory, the class's memory limit × memoryFactor^oomKilled).
// It is the class's memory limit when the class does not grow it, and nil
// when the class sets none.
func attemptMemory(spec *ejv1.ExtractorClassSpec, oomKilled int32) *resource.Quantity {
	if spec.Resources == nil {
		return nil
	}
	base, ok := spec.Resources.Limits[corev1.ResourceMemory]
	if !ok {
		return nil
	}
	memory := base.DeepCopy()
	growth := spec.OnOOMKilled
	if growth == nil {
		return &memory
	}
	for range oomKilled {
		// Stops at maxMemory, long before the multiplication could overflow.
		if memory.Cmp(growth.MaxMemory) >= 0 {
			break
		}
		memory.Mul(int64(growth.MemoryFactor))
	}
	if memory.Cmp(growth.MaxMemory) > 0 {
		memory = growth.MaxMemory.DeepCopy()
	}
	return &memory
}

// podMemory is the memory limit of an attempt Pod's extractor; nil when it
// has none. The cache keeps it, and little else of the spec.
func podMemory(pod *corev1.Pod) *resource.Quantity {
	for _, c := range pod.Spec.Containers {
		if memory, ok := c.Resources.Limits[corev1.ResourceMemory]; ok && c.Name == extractorContainerName {
			return &memory
		}
	}
	return nil
}

// lastAttemptMemory is the memory the job's latest recorded attempt ran with.
func lastAttemptMemory(job *ejv1.ExtractionJob) *resource.Quantity {
	if n := len(job.Status.Attempts); n > 0 {
		return job.Status.Attempts[n-1].Memory
	}
	return nil
}

// releasePod removes the tracking finalizer from an attempt's Pod once its
// outcome is recorded or can no longer be. The optimistic lock keeps other
// finalizers that someone added meanwhile.
func releasePod(ctx context.Context, c client.Client, pod *corev1.Pod) error {
	if !controllerutil.ContainsFinalizer(pod, ejv1.AttemptTrackingFinalizer) {
		return nil
	}
	patch := client.MergeFromWithOptions(pod.DeepCopy(), client.MergeFromWithOptimisticLock{})
	controllerutil.RemoveFinalizer(pod, ejv1.AttemptTrackingFinalizer)
	if err := c.Patch(ctx, pod, patch); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("releasing pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	return nil
}
