package controllers

// A stand-in for competingDefaults in the class core's classes.go, with its
// signature and meaning, so that the class status controller compiles on
// this branch. Delete this file when merging the classcore branch.

import (
	"slices"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
)

// competingDefaults maps the name of each default class to the sorted names
// of the default classes that serve one of its formats in a namespace both
// admit.
func competingDefaults(classes []ejv1.ExtractorClass, namespaces []corev1.Namespace) map[string][]string {
	admits := func(class *ejv1.ExtractorClass, ns *corev1.Namespace) bool {
		if class.Spec.NamespaceSelector == nil {
			return true
		}
		selector, err := metav1.LabelSelectorAsSelector(class.Spec.NamespaceSelector)
		return err == nil && selector.Matches(labels.Set(ns.Labels))
	}
	competing := map[string][]string{}
	for i := range classes {
		for j := i + 1; j < len(classes); j++ {
			a, b := &classes[i], &classes[j]
			shareFormat := slices.ContainsFunc(a.Spec.Formats, func(f ejv1.Format) bool { return slices.Contains(b.Spec.Formats, f) })
			if !a.Spec.Default || !b.Spec.Default || !shareFormat {
				continue
			}
			if slices.ContainsFunc(namespaces, func(ns corev1.Namespace) bool { return admits(a, &ns) && admits(b, &ns) }) {
				competing[a.Name] = append(competing[a.Name], b.Name)
				competing[b.Name] = append(competing[b.Name], a.Name)
			}
		}
	}
	for name := range competing {
		slices.Sort(competing[name])
	}
	return competing
}
