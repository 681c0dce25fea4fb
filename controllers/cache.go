package controllers

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
)

// CacheOptions keeps the operator's memory proportional to its own objects
// and to what it reads of them: only Pods that carry the job-uid label are
// cached, and trimForCache drops what the operator never reads.
func CacheOptions() cache.Options {
	ownPods, err := labels.NewRequirement(ejv1.JobUIDLabel, selection.Exists, nil)
	if err != nil {
		panic(err) // a constant label key is always valid
	}
	return cache.Options{
		DefaultTransform: trimForCache,
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Pod{}: {Label: labels.NewSelector().Add(*ownPods)},
		},
	}
}

var stripManagedFields = cache.TransformStripManagedFields()

// trimForCache strips managed fields from every cached object, and from
// Pods all that the operator does not read. The operator writes an attempt
// Pod's spec once, when it creates the Pod, and then reads only its
// metadata, the names of its scheduling gates, the extractor's memory limit
// (the attempt's record, when it adopts the Pod), its phase, reason and
// message, the PodScheduled condition (why it waits, and since when), the
// conditions that can explain a failure, and the containers' states; the
// rest is most of a cached Pod's size. Writes of a Pod are merge patches of
// its metadata, so a trimmed copy never reaches the API server as a whole
// object.
func trimForCache(obj any) (any, error) {
	obj, err := stripManagedFields(obj)
	if pod, ok := obj.(*corev1.Pod); ok {
		pod.Spec = trimPodSpec(pod.Spec)
		pod.Status = trimPodStatus(pod.Status)
	}
	return obj, err
}

func trimPodSpec(full corev1.PodSpec) corev1.PodSpec {
	var spec corev1.PodSpec
	for _, gate := range full.SchedulingGates {
		spec.SchedulingGates = append(spec.SchedulingGates, corev1.PodSchedulingGate{Name: gate.Name})
	}
	if memory := podMemory(&corev1.Pod{Spec: full}); memory != nil {
		spec.Containers = []corev1.Container{{Name: extractorContainerName,
			Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: *memory}}}}
	}
	return spec
}

func trimPodStatus(full corev1.PodStatus) corev1.PodStatus {
	status := corev1.PodStatus{Phase: full.Phase, Reason: full.Reason, Message: full.Message}
	for _, c := range full.Conditions {
		switch {
		case c.Type == corev1.PodScheduled:
			status.Conditions = append(status.Conditions, corev1.PodCondition{
				Type: c.Type, Status: c.Status, Reason: c.Reason, Message: c.Message, LastTransitionTime: c.LastTransitionTime})
		case !isLifecycleCondition(c.Type):
			status.Conditions = append(status.Conditions, corev1.PodCondition{Type: c.Type, Status: c.Status, Reason: c.Reason})
		}
	}
	for _, c := range full.ContainerStatuses {
		status.ContainerStatuses = append(status.ContainerStatuses, corev1.ContainerStatus{Name: c.Name, State: c.State})
	}
	return status
}
