package scenario

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
)

func classPod(uid, class string, phase corev1.PodPhase) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{UID: types.UID(uid), Labels: map[string]string{ejv1.ExtractorClassLabel: class}},
		Status:     corev1.PodStatus{Phase: phase},
	}
}

func TestSlotWatchCountsTheClassesPodsInFlightAndTimesEachFreedSlotToTheNextPod(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	w := newSlotWatch("capped", 2, 4)
	w.observe(classPod("a", "capped", ""), false, at(0))
	w.observe(classPod("other", "default", ""), false, at(0)) // another class: not counted
	w.observe(classPod("b", "capped", corev1.PodRunning), false, at(1))
	w.observe(classPod("a", "capped", corev1.PodRunning), false, at(2))    // an update of a live Pod
	w.observe(classPod("a", "capped", corev1.PodSucceeded), false, at(10)) // full: the slot counts
	w.observe(classPod("c", "capped", ""), false, at(30))                  // takes it after 20 ms
	w.observe(classPod("a", "capped", corev1.PodSucceeded), true, at(40))  // its deletion frees nothing again
	w.observe(classPod("b", "capped", corev1.PodFailed), false, at(50))
	w.observe(classPod("c", "capped", corev1.PodSucceeded), false, at(55)) // refilling: counts too
	w.observe(classPod("d", "capped", ""), false, at(60))                  // takes the slot of 50
	w.observe(classPod("d", "capped", ""), true, at(70))                   // every job started: counts not
	w.observe(classPod("e", "capped", ""), false, at(80))                  // takes the slot of 55

	peak, taken := w.result()
	if peak != 2 {
		t.Errorf("peak in flight = %d, want 2", peak)
	}
	want := []time.Duration{20 * time.Millisecond, 10 * time.Millisecond, 25 * time.Millisecond}
	if diff := cmp.Diff(want, taken); diff != "" {
		t.Errorf("freed → taken (-want +got):\n%s", diff)
	}
}

func TestSlotWatchOfAnUncappedClassTimesNoSlots(t *testing.T) {
	w := newSlotWatch("open", 0, 2)
	now := time.Now()
	w.observe(classPod("a", "open", ""), false, now)
	w.observe(classPod("a", "open", corev1.PodSucceeded), false, now)
	w.observe(classPod("b", "open", ""), false, now)
	peak, taken := w.result()
	if peak != 1 || len(taken) != 0 {
		t.Errorf("peak %d and %d slots timed, want 1 and none", peak, len(taken))
	}
}
