package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"maps"
	"math"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
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

// attemptPod builds the Pod of one attempt. The image comes from the
// operator's configuration, never from the job, so authors of jobs cannot run
// arbitrary images.
func attemptPod(job *ejv1.ExtractionJob, attempt int32, image string) (*corev1.Pod, error) {
	options, err := json.Marshal(job.Spec.Options)
	if err != nil {
		return nil, fmt.Errorf("encoding spec.options: %w", err)
	}
	if job.Spec.Options == nil {
		options = []byte("{}")
	}

	labels, annotations := map[string]string{}, map[string]string{}
	if tmpl := job.Spec.PodTemplate; tmpl != nil {
		maps.Copy(labels, tmpl.Metadata.Labels)
		maps.Copy(annotations, tmpl.Metadata.Annotations)
	}
	labels[ejv1.JobUIDLabel] = string(job.UID)
	labels[ejv1.AttemptLabel] = strconv.Itoa(int(attempt))

	container := corev1.Container{
		Name:  extractorContainerName,
		Image: image,
		Env: []corev1.EnvVar{
			{Name: podcontract.EnvFormat, Value: string(job.Spec.Format)},
			{Name: podcontract.EnvSourceURL, Value: job.Spec.Source.URL},
			{Name: podcontract.EnvOptions, Value: string(options)},
			{Name: podcontract.EnvAttempt, Value: strconv.Itoa(int(attempt))},
		},
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
			AutomountServiceAccountToken: ptr.To(false),
			EnableServiceLinks:           ptr.To(false),
			SecurityContext: &corev1.PodSecurityContext{
				RunAsNonRoot:   ptr.To(true),
				RunAsUser:      ptr.To[int64](extractorUID),
				RunAsGroup:     ptr.To[int64](extractorUID),
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			Containers: []corev1.Container{container},
			Volumes: []corev1.Volume{{
				Name:         scratchVolumeName,
				VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}},
			}},
		},
	}
	if timeout := job.Spec.AttemptTimeout; timeout != nil {
		pod.Spec.ActiveDeadlineSeconds = ptr.To(int64(math.Ceil(timeout.Seconds())))
	}
	return pod, nil
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
