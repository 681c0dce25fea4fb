package controllers

import (
	"testing"
	"time"

	"k8s.io/utils/clock"
	clocktesting "k8s.io/utils/clock/testing"
)

func TestZeroOptionsRunTheReconcilerAsInProduction(t *testing.T) {
	r := NewExtractionJobReconciler(nil, nil, nil, Options{})
	if _, ok := r.clock.(clock.RealClock); !ok {
		t.Errorf("clock = %T, want the real clock", r.clock)
	}
	if r.jitter == nil {
		t.Fatal("no jitter")
	}
	for range 100 {
		if j := r.jitter(); j < 0 || j >= 1 {
			t.Fatalf("jitter %v is outside [0, 1)", j)
		}
	}
	if r.imagePullGracePeriod != DefaultImagePullGracePeriod {
		t.Errorf("image pull grace period = %s, want %s", r.imagePullGracePeriod, DefaultImagePullGracePeriod)
	}
}

func TestGivenOptionsWinOverTheDefaults(t *testing.T) {
	fakeClock := clocktesting.NewFakeClock(time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC))
	r := NewExtractionJobReconciler(nil, nil, nil, Options{
		Clock:                fakeClock,
		Jitter:               func() float64 { return 0.25 },
		ImagePullGracePeriod: time.Minute,
	})
	if r.clock != fakeClock || r.jitter() != 0.25 || r.imagePullGracePeriod != time.Minute {
		t.Errorf("clock %v, jitter %v, grace %s: the options were not kept", r.clock, r.jitter(), r.imagePullGracePeriod)
	}
}
