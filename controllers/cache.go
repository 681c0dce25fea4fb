package controllers

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
)

// CacheOptions keeps the operator's memory proportional to its own objects:
// only Pods that carry the job-uid label are cached, and managed fields,
// which the operator never reads, are stripped from everything cached.
func CacheOptions() cache.Options {
	ownPods, err := labels.NewRequirement(ejv1.JobUIDLabel, selection.Exists, nil)
	if err != nil {
		panic(err) // a constant label key is always valid
	}
	return cache.Options{
		DefaultTransform: cache.TransformStripManagedFields(),
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Pod{}: {Label: labels.NewSelector().Add(*ownPods)},
		},
	}
}
