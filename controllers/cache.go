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

// trimForCache strips managed fields from every cached object, and the spec
// from Pods. The operator writes an attempt Pod's spec once, when it creates
// the Pod, and then reads only its metadata and status; the spec is most of
// a cached Pod's size. Writes of a Pod are merge patches of its metadata, so
// a trimmed copy never reaches the API server as a whole object.
func trimForCache(obj any) (any, error) {
	obj, err := stripManagedFields(obj)
	if pod, ok := obj.(*corev1.Pod); ok {
		pod.Spec = corev1.PodSpec{}
	}
	return obj, err
}
