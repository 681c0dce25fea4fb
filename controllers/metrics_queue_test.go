package controllers

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
)

func TestTheCacheCollectorGivesTheOldestQueuedJobsAgeAndEachCap(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	queuedJob := func(name string, created time.Time, attempt int32, nextRetryAt *time.Time) *ejv1.ExtractionJob {
		job := &ejv1.ExtractionJob{
			ObjectMeta: metav1.ObjectMeta{Namespace: "plant-a", Name: name, CreationTimestamp: metav1.NewTime(created)},
			Spec:       ejv1.ExtractionJobSpec{Format: ejv1.FormatPDF},
			Status:     ejv1.ExtractionJobStatus{Phase: ejv1.PhaseQueued, ExtractorClassName: "werk24-api", Attempt: attempt},
		}
		if nextRetryAt != nil {
			job.Status.NextRetryAt = preciseTime(*nextRetryAt)
		}
		return job
	}
	retryDue := now.Add(-30 * time.Minute)
	reader := fakeAdmissionCache(
		&ejv1.ExtractorClass{ObjectMeta: metav1.ObjectMeta{Name: "werk24-api"}, Spec: ejv1.ExtractorClassSpec{MaxRunning: ptr.To[int32](3)}},
		&ejv1.ExtractorClass{ObjectMeta: metav1.ObjectMeta{Name: "uncapped"}},
		// Created two hours ago but queued for its retry, due half an hour ago.
		queuedJob("retry", now.Add(-2*time.Hour), 1, &retryDue),
		queuedJob("new", now.Add(-10*time.Minute), 0, nil),
	)
	collector := cacheCollector{reader: reader, clock: clocktesting.NewFakePassiveClock(now)}

	want := `
# HELP extractionjob_class_max_running The ExtractorClass's spec.maxRunning; no series for a class without a cap.
# TYPE extractionjob_class_max_running gauge
extractionjob_class_max_running{extractor_class="werk24-api"} 3
# HELP extractionjob_oldest_queued_seconds How long the longest-waiting Queued job of the ExtractorClass has been ready to start an attempt; no series while none is queued.
# TYPE extractionjob_oldest_queued_seconds gauge
extractionjob_oldest_queued_seconds{extractor_class="werk24-api"} 1800
`
	if err := testutil.CollectAndCompare(collector, strings.NewReader(want),
		"extractionjob_class_max_running", "extractionjob_oldest_queued_seconds"); err != nil {
		t.Error(err)
	}
}
