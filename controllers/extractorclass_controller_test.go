package controllers

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
)

// reconcileClass reconciles the class and returns it as written.
func reconcileClass(t *testing.T, r *extractorClassReconciler, name string) (ctrl.Result, *ejv1.ExtractorClass) {
	t.Helper()
	result, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: types.NamespacedName{Name: name}})
	if err != nil {
		t.Fatalf("reconcile: %v", err)
	}
	class := &ejv1.ExtractorClass{}
	if err := r.client.Get(context.Background(), client.ObjectKey{Name: name}, class); err != nil {
		t.Fatal(err)
	}
	return result, class
}

type classCountsSeen struct {
	Running, Queued int32
	RequeueAfter    time.Duration
}

func TestClassCountsAreWrittenAtMostEveryIntervalAndOnlyWhenTheyChange(t *testing.T) {
	clock := clocktesting.NewFakeClock(queueEpoch)
	cache := fakeAdmissionCache(admissionTestClass("capped", ptr.To[int32](5), nil),
		classPod("a", "p1", "capped", corev1.PodRunning), classPod("a", "p2", "capped", corev1.PodSucceeded),
		admissionTestJob("a", "waiting", 0, ejv1.PhaseQueued), admissionTestJob("a", "pending", 0, ejv1.PhasePending))
	r := &extractorClassReconciler{client: cache, clock: clock, counted: map[string]time.Time{}}
	ctx := context.Background()

	seen := func() (classCountsSeen, string) {
		result, class := reconcileClass(t, r, "capped")
		return classCountsSeen{class.Status.Running, class.Status.Queued, result.RequeueAfter}, class.ResourceVersion
	}
	got, written := seen()
	if diff := cmp.Diff(classCountsSeen{Running: 1, Queued: 1}, got); diff != "" {
		t.Errorf("first counts (-want +got):\n%s", diff)
	}

	if err := cache.Create(ctx, classPod("b", "p3", "capped", corev1.PodPending)); err != nil {
		t.Fatal(err)
	}
	clock.Step(2 * time.Second)
	if got, _ := seen(); !cmp.Equal(got, classCountsSeen{Running: 1, Queued: 1, RequeueAfter: 3 * time.Second}) {
		t.Errorf("within the interval: %+v, want the old counts and a requeue when they are due", got)
	}

	clock.Step(3 * time.Second)
	got, written = seen()
	if diff := cmp.Diff(classCountsSeen{Running: 2, Queued: 1}, got); diff != "" {
		t.Errorf("counts when due (-want +got):\n%s", diff)
	}

	clock.Step(10 * time.Second)
	if _, again := seen(); again != written {
		t.Errorf("unchanged counts were written again (resourceVersion %s, then %s)", written, again)
	}
}

func TestClassConditions(t *testing.T) {
	defaultClass := func(name string, created int, selector *metav1.LabelSelector) *ejv1.ExtractorClass {
		return &ejv1.ExtractorClass{
			ObjectMeta: metav1.ObjectMeta{Name: name, Generation: 3, CreationTimestamp: metav1.NewTime(queueEpoch.Add(time.Duration(created) * time.Second))},
			Spec:       ejv1.ExtractorClassSpec{Formats: []ejv1.Format{ejv1.FormatPDF}, Default: true, NamespaceSelector: selector},
		}
	}
	tenant := &metav1.LabelSelector{MatchLabels: map[string]string{"tenant": "a"}}
	invalid := &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "tenant", Operator: "Near"}}}
	namespaces := []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "tenant-a", Labels: map[string]string{"tenant": "a"}}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "other"}},
	}
	type conditionSeen struct {
		Type, Reason string
		Status       metav1.ConditionStatus
	}
	for _, tc := range []struct {
		name    string
		classes []client.Object
		want    []conditionSeen
	}{
		{"a lone default class is ready",
			[]client.Object{defaultClass("mine", 0, nil)},
			[]conditionSeen{{ejv1.ConditionReady, ejv1.ReasonAccepted, metav1.ConditionTrue}}},
		{"two defaults for one format and namespace compete",
			[]client.Object{defaultClass("mine", 0, nil), defaultClass("theirs", 1, tenant)},
			[]conditionSeen{{ejv1.ConditionReady, ejv1.ReasonAccepted, metav1.ConditionTrue},
				{ejv1.ConditionCompetingDefaults, ejv1.ReasonCompetingDefaults, metav1.ConditionTrue}}},
		{"defaults for disjoint namespaces do not compete",
			[]client.Object{defaultClass("mine", 0, &metav1.LabelSelector{MatchLabels: map[string]string{"tenant": "b"}}), defaultClass("theirs", 1, tenant)},
			[]conditionSeen{{ejv1.ConditionReady, ejv1.ReasonAccepted, metav1.ConditionTrue}}},
		{"a namespaceSelector that does not parse stalls the class",
			[]client.Object{defaultClass("mine", 0, invalid)},
			[]conditionSeen{{ejv1.ConditionReady, ejv1.ReasonInvalidNamespaceSelector, metav1.ConditionFalse},
				{ejv1.ConditionStalled, ejv1.ReasonInvalidNamespaceSelector, metav1.ConditionTrue}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &extractorClassReconciler{client: fakeAdmissionCache(append(tc.classes, namespaces...)...),
				clock: clocktesting.NewFakeClock(queueEpoch), counted: map[string]time.Time{}}
			_, class := reconcileClass(t, r, "mine")
			var got []conditionSeen
			for _, c := range class.Status.Conditions {
				got = append(got, conditionSeen{c.Type, c.Reason, c.Status})
				if c.ObservedGeneration != 3 {
					t.Errorf("condition %s observed generation %d, want 3", c.Type, c.ObservedGeneration)
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("conditions (-want +got):\n%s", diff)
			}
			if class.Status.ObservedGeneration != 3 {
				t.Errorf("observedGeneration = %d, want 3", class.Status.ObservedGeneration)
			}
			if c := meta.FindStatusCondition(class.Status.Conditions, ejv1.ConditionCompetingDefaults); c != nil {
				if want := "The default classes theirs serve"; c.Message[:len(want)] != want {
					t.Errorf("CompetingDefaults message %q does not name the competitor", c.Message)
				}
			}
		})
	}
}
