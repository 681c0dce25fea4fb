package controllers

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
)

// This file chooses a job's ExtractorClass. It reads nothing through the
// API: the reconciler lists the classes and reads the job's Namespace.

// classChoice is the class a job runs with, or why it has none.
type classChoice struct {
	// Class runs the job; nil when Reason says why no class does.
	Class *ejv1.ExtractorClass
	// Reason is empty when Class runs the job. ReasonExtractorClassNotFound
	// and ReasonFormatNotServed leave the job waiting for an administrator;
	// ReasonExtractorClassNotAllowed fails it.
	Reason string
	// Message says, for people, what is missing.
	Message string
}

// chooseClass picks the class of a job: the one its spec names, else the
// one it already runs with, else the default for its format in its
// namespace. namespace is the job's Namespace; nil when it cannot be read
// (then only classes without a namespaceSelector admit the job).
func chooseClass(job *ejv1.ExtractionJob, classes []ejv1.ExtractorClass, namespace *corev1.Namespace) classChoice {
	name := job.Spec.ExtractorClassName
	if name == "" {
		name = job.Status.ExtractorClassName
	}
	if name == "" {
		if class := defaultClass(classes, job.Spec.Format, namespace); class != nil {
			return classChoice{Class: class}
		}
		return classChoice{Reason: ejv1.ReasonExtractorClassNotFound, Message: fmt.Sprintf(
			"No default ExtractorClass serves format %s in namespace %s; waiting for one, or set spec.extractorClassName.",
			job.Spec.Format, job.Namespace)}
	}
	i := slices.IndexFunc(classes, func(c ejv1.ExtractorClass) bool { return c.Name == name })
	if i < 0 {
		return classChoice{Reason: ejv1.ReasonExtractorClassNotFound,
			Message: fmt.Sprintf("ExtractorClass %s does not exist; waiting for it.", name)}
	}
	class := &classes[i]
	if !slices.Contains(class.Spec.Formats, job.Spec.Format) {
		return classChoice{Reason: ejv1.ReasonFormatNotServed, Message: fmt.Sprintf(
			"ExtractorClass %s does not serve format %s (it serves %s); waiting for it to.",
			name, job.Spec.Format, joinFormats(class.Spec.Formats))}
	}
	if !classAdmits(class, namespace) {
		return classChoice{Reason: ejv1.ReasonExtractorClassNotAllowed, Message: fmt.Sprintf(
			"ExtractorClass %s does not admit namespace %s.", name, job.Namespace)}
	}
	return classChoice{Class: class}
}

// defaultClass is the oldest default class, then by name, that serves the
// format and admits the namespace; nil when there is none.
func defaultClass(classes []ejv1.ExtractorClass, format ejv1.Format, namespace *corev1.Namespace) *ejv1.ExtractorClass {
	var chosen *ejv1.ExtractorClass
	for i := range classes {
		class := &classes[i]
		if !class.Spec.Default || !slices.Contains(class.Spec.Formats, format) || !classAdmits(class, namespace) {
			continue
		}
		if chosen == nil || olderClass(*class, *chosen) < 0 {
			chosen = class
		}
	}
	return chosen
}

// olderClass orders classes by creation, then by name.
func olderClass(a, b ejv1.ExtractorClass) int {
	if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
		return c
	}
	return cmp.Compare(a.Name, b.Name)
}

// classAdmits reports whether the class's namespaceSelector admits the
// namespace. No selector admits every namespace; a selector that does not
// parse admits none, so that a typo never widens a class.
func classAdmits(class *ejv1.ExtractorClass, namespace *corev1.Namespace) bool {
	if class.Spec.NamespaceSelector == nil {
		return true
	}
	selector, err := metav1.LabelSelectorAsSelector(class.Spec.NamespaceSelector)
	if err != nil || namespace == nil {
		return false
	}
	return selector.Matches(labels.Set(namespace.Labels))
}

// competingDefaults finds the default classes that compete for the jobs of
// a format: two default classes that serve the same format and both admit
// one of the namespaces. Whether two selectors could both admit some future
// namespace is not decided; the existing namespaces are what jobs run in.
// The result maps a class's name to the sorted names of its competitors.
func competingDefaults(classes []ejv1.ExtractorClass, namespaces []corev1.Namespace) map[string][]string {
	competing := map[string][]string{}
	for i := range classes {
		for j := i + 1; j < len(classes); j++ {
			a, b := &classes[i], &classes[j]
			if !a.Spec.Default || !b.Spec.Default || !shareFormat(a, b) {
				continue
			}
			both := slices.ContainsFunc(namespaces, func(ns corev1.Namespace) bool {
				return classAdmits(a, &ns) && classAdmits(b, &ns)
			})
			if both {
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

func shareFormat(a, b *ejv1.ExtractorClass) bool {
	return slices.ContainsFunc(a.Spec.Formats, func(f ejv1.Format) bool { return slices.Contains(b.Spec.Formats, f) })
}

func joinFormats(formats []ejv1.Format) string {
	names := make([]string, len(formats))
	for i, f := range formats {
		names[i] = string(f)
	}
	return strings.Join(names, ", ")
}

// waitingForClassField indexes the jobs that wait for a class to appear or
// to serve their format, by what they wait for, so that a class event wakes
// exactly those jobs without a scan of every job.
const waitingForClassField = "extraction.pybase.io/waiting-for-class"

// defaultClassKey is the index value of the jobs that wait for a default
// class of a format.
func defaultClassKey(format ejv1.Format) string { return "default/" + string(format) }

// classesAwaited is a job's waitingForClassField: the name of the class it
// waits for, or the default of its format; nothing when it waits for no class.
func classesAwaited(job *ejv1.ExtractionJob) []string {
	if job.Status.Phase != ejv1.PhasePending || job.Status.PodName != "" {
		return nil
	}
	switch reason := conditionReason(job, ejv1.ConditionReconciling); reason {
	case ejv1.ReasonExtractorClassNotFound, ejv1.ReasonFormatNotServed:
	default:
		return nil
	}
	name := job.Spec.ExtractorClassName
	if name == "" {
		name = job.Status.ExtractorClassName
	}
	if name == "" {
		return []string{defaultClassKey(job.Spec.Format)}
	}
	return []string{name}
}

// classAwaitedAs lists the index values of the jobs that a class's creation
// or change may let start: those naming it, and for a default class those
// waiting for a default of one of its formats.
func classAwaitedAs(class *ejv1.ExtractorClass) []string {
	keys := []string{class.Name}
	if class.Spec.Default {
		for _, f := range class.Spec.Formats {
			keys = append(keys, defaultClassKey(f))
		}
	}
	return keys
}

func conditionReason(job *ejv1.ExtractionJob, conditionType string) string {
	if c := meta.FindStatusCondition(job.Status.Conditions, conditionType); c != nil {
		return c.Reason
	}
	return ""
}
