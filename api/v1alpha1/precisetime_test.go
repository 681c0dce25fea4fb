package v1alpha1_test

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
)

func TestAPreciseTimeReadsRFC3339WithAnyFractionOrNone(t *testing.T) {
	at := func(nsec int) time.Time { return time.Date(2026, 11, 28, 12, 0, 34, nsec, time.UTC) }
	for _, tc := range []struct {
		name, json string
		want       time.Time
	}{
		{"whole seconds, as metav1.Time writes them", `"2026-11-28T12:00:34Z"`, at(0)},
		{"milliseconds", `"2026-11-28T12:00:34.250Z"`, at(250_000_000)},
		{"microseconds, as it writes them", `"2026-11-28T12:00:34.123456Z"`, at(123_456_000)},
		{"nanoseconds, rounded up to the next microsecond", `"2026-11-28T12:00:34.123456001Z"`, at(123_457_000)},
		{"an offset, read as UTC", `"2026-11-28T13:00:34.5+01:00"`, at(500_000_000)},
		{"null, the zero time", `null`, time.Time{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got ejv1.PreciseTime
			if err := json.Unmarshal([]byte(tc.json), &got); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(ejv1.PreciseTime{Time: tc.want}, got); diff != "" {
				t.Errorf("read %s (-want +got):\n%s", tc.json, diff)
			}
		})
	}
}

func TestAPreciseTimeRefusesWhatIsNotATime(t *testing.T) {
	for _, in := range []string{`"yesterday"`, `"2026-11-28 12:00:34"`, `1764331234`} {
		var got ejv1.PreciseTime
		if err := json.Unmarshal([]byte(in), &got); err == nil {
			t.Errorf("read %s as %s, want an error", in, got)
		}
	}
}

func TestAPreciseTimeWritesMicrosecondsRoundedUp(t *testing.T) {
	at := func(nsec int) time.Time { return time.Date(2026, 11, 28, 12, 0, 34, nsec, time.UTC) }
	for _, tc := range []struct {
		name string
		time time.Time
		want string
	}{
		{"a whole second", at(0), `"2026-11-28T12:00:34.000000Z"`},
		{"a microsecond exactly", at(1_000), `"2026-11-28T12:00:34.000001Z"`},
		{"a nanosecond past a microsecond, rounded up", at(1_001), `"2026-11-28T12:00:34.000002Z"`},
		{"a nanosecond before the next second, rounded up into it", at(999_999_999), `"2026-11-28T12:00:35.000000Z"`},
		{"another zone, written as UTC", at(0).In(time.FixedZone("CET", 3600)), `"2026-11-28T12:00:34.000000Z"`},
		{"the zero time, as null", time.Time{}, `null`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Not through NewPreciseTime: a time set directly is rounded up too.
			got, err := json.Marshal(ejv1.PreciseTime{Time: tc.time})
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("wrote %s, want %s", got, tc.want)
			}
		})
	}
}

// The operator compares the status it read with the one it would write, and
// writes only when they differ: a time it makes must equal the same time
// read back, by reflect.DeepEqual as much as by Equal, or it would write the
// same status again and again.
func TestAPreciseTimeReadsBackAsItWasMade(t *testing.T) {
	local := time.Date(2026, 11, 28, 13, 0, 34, 123_456_789, time.FixedZone("CET", 3600))
	for _, tc := range []struct {
		name string
		time time.Time
	}{
		{"a reading of the clock, with its monotonic part", time.Now()},
		{"a time in another zone, with nanoseconds", local},
		{"a whole second", time.Date(2026, 11, 28, 12, 0, 34, 0, time.UTC)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			made := ejv1.NewPreciseTime(tc.time)
			if made.Before(tc.time) {
				t.Errorf("made %s, earlier than %s", made, tc.time)
			}
			if made.Sub(tc.time) >= time.Microsecond {
				t.Errorf("made %s, a microsecond or more after %s", made, tc.time)
			}
			raw, err := json.Marshal(made)
			if err != nil {
				t.Fatal(err)
			}
			var read ejv1.PreciseTime
			if err := json.Unmarshal(raw, &read); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(made, read) {
				t.Errorf("made %#v, read back %#v from %s", made, read, raw)
			}
			unstructuredStatus, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&ejv1.ExtractionJobStatus{NextRetryAt: &made})
			if err != nil {
				t.Fatal(err)
			}
			var converted ejv1.ExtractionJobStatus
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(unstructuredStatus, &converted); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(&made, converted.NextRetryAt) {
				t.Errorf("made %#v, converted back %#v from %v", made, converted.NextRetryAt, unstructuredStatus)
			}
		})
	}
}

func TestPreciseTimesCompareAsTheInstantsTheyHold(t *testing.T) {
	due := time.Date(2026, 11, 28, 12, 0, 34, 250_000_000, time.UTC)
	status := func(at time.Time) ejv1.ExtractionJobStatus {
		return ejv1.ExtractionJobStatus{NextRetryAt: ptr.To(ejv1.PreciseTime{Time: at})}
	}
	for _, tc := range []struct {
		name string
		a, b ejv1.ExtractionJobStatus
		want bool
	}{
		{"the same instant", status(due), status(due), true},
		{"the same instant in another zone", status(due), status(due.In(time.FixedZone("CET", 3600))), true},
		{"a microsecond apart", status(due), status(due.Add(time.Microsecond)), false},
		{"one unset", status(due), ejv1.ExtractionJobStatus{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := equality.Semantic.DeepEqual(tc.a, tc.b); got != tc.want {
				t.Errorf("equality.Semantic.DeepEqual = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestACopiedPreciseTimeIsEqual(t *testing.T) {
	status := ejv1.ExtractionJobStatus{NextRetryAt: ptr.To(ejv1.NewPreciseTime(time.Now()))}
	copied := status.DeepCopy()
	if copied.NextRetryAt == status.NextRetryAt || !reflect.DeepEqual(copied.NextRetryAt, status.NextRetryAt) {
		t.Errorf("copied %v from %v: want an equal time at another address", copied.NextRetryAt, status.NextRetryAt)
	}
}

// The API server, not only Go, must take both forms: whole seconds, as
// earlier versions stored, and microseconds, as this one writes.
func TestNextRetryAtIsStoredWithWholeSecondsOrMicroseconds(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name, stored string
		want         time.Time
	}{
		{"whole-seconds", "2026-11-28T12:00:34Z", time.Date(2026, 11, 28, 12, 0, 34, 0, time.UTC)},
		{"microseconds", "2026-11-28T12:00:34.123456Z", time.Date(2026, 11, 28, 12, 0, 34, 123_456_000, time.UTC)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			job := &ejv1.ExtractionJob{
				ObjectMeta: metav1.ObjectMeta{Namespace: metav1.NamespaceDefault, Name: uniqueName(tc.name)},
				Spec:       ejv1.ExtractionJobSpec{Format: ejv1.FormatPDF, Source: ejv1.Source{URL: "s3://bucket/a.pdf"}},
			}
			if err := k8sClient.Create(ctx, job); err != nil {
				t.Fatal(err)
			}
			raw := &unstructured.Unstructured{}
			raw.SetGroupVersionKind(ejv1.GroupVersion.WithKind("ExtractionJob"))
			raw.SetNamespace(job.Namespace)
			raw.SetName(job.Name)
			patch := []byte(`{"status":{"phase":"Retrying","nextRetryAt":"` + tc.stored + `"}}`)
			if err := k8sClient.Status().Patch(ctx, raw, client.RawPatch("application/merge-patch+json", patch)); err != nil {
				t.Fatalf("storing nextRetryAt %s: %v", tc.stored, err)
			}
			read := &ejv1.ExtractionJob{}
			if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(job), read); err != nil {
				t.Fatalf("reading a job stored with nextRetryAt %s: %v", tc.stored, err)
			}
			if read.Status.NextRetryAt == nil || !read.Status.NextRetryAt.Equal(tc.want) {
				t.Errorf("nextRetryAt %v, want %s", read.Status.NextRetryAt, tc.want)
			}
		})
	}
}
