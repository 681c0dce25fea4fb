package classwatch

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
	"github.com/pybase/extraction-operator/test/harness/builders"
	"github.com/pybase/extraction-operator/test/harness/controlplane"
	"github.com/pybase/extraction-operator/test/harness/sim"
)

func TestLongestOutsideSkipsTheExcusedPeriods(t *testing.T) {
	at := func(s int) time.Time { return time.Unix(int64(s), 0) }
	excused := []period{{at(14), at(16)}, {at(3), at(5)}}
	cases := []struct {
		name     string
		from, to time.Time
		want     time.Duration
	}{
		{"a wait before every excuse is whole", at(0), at(2), 2 * time.Second},
		{"a wait across an excuse counts its longest side", at(0), at(12), 7 * time.Second},
		{"a wait inside an excuse is nothing", at(14), at(15), 0},
		{"a wait between two excuses counts the gap", at(4), at(15), 9 * time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, longestOutside(tc.from, tc.to, excused)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// Without an operator: the test plays it, with Pods of the class and a
// job's Queued status, and the Watch must see the cap broken and a job
// waiting while a slot is free.
func TestWatchFindsTheCapExceededAndAJobQueuedWhileASlotIsFree(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd and kube-apiserver")
	}
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(ejv1.AddToScheme(scheme))
	cp, err := controlplane.Start(controlplane.Options{Dir: t.TempDir(), Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cp.Stop() })
	ctx := context.Background()
	cl, err := client.New(cp.Config(-1, 0), client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.Create(ctx, builders.Namespace("tenant", nil)); err != nil {
		t.Fatal(err)
	}
	class := builders.ExtractorClass("capped", "registry.example/x:1", builders.WithMaxRunning(1))
	w, err := Start(ctx, Options{Config: cp.Config(-1, 0), Class: class, Grace: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	pods := make([]*corev1.Pod, 2)
	for i := range pods {
		pods[i] = builders.AttemptPod("tenant", []string{"a", "b"}[i], "uid", i+1, nil, nil)
		pods[i].Labels[ejv1.ExtractorClassLabel] = class.Name
		if err := cl.Create(ctx, pods[i]); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range pods {
		if err := cl.Delete(ctx, p, client.GracePeriodSeconds(0)); err != nil {
			t.Fatal(err)
		}
	}
	job := builders.ExtractionJob("tenant", "waits", sim.Plan{}, builders.WithClass(class.Name))
	if err := cl.Create(ctx, job); err != nil {
		t.Fatal(err)
	}
	job.Status = ejv1.ExtractionJobStatus{Phase: ejv1.PhaseQueued, ExtractorClassName: class.Name, Message: "waiting"}
	if err := cl.Status().Update(ctx, job); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	report := w.Stop()
	if report.Peak != 2 || report.JobsQueued != 1 || report.LongestFreeWait < 500*time.Millisecond {
		t.Errorf("peak %d, jobs queued %d, longest free wait %s; want 2, 1, at least 500ms", report.Peak, report.JobsQueued, report.LongestFreeWait)
	}
	var kinds []EventKind
	for _, ev := range report.Timeline {
		kinds = append(kinds, ev.Kind)
	}
	if diff := cmp.Diff([]EventKind{Started, Started, Gone, Gone}, kinds); diff != "" {
		t.Errorf("timeline (-want +got):\n%s", diff)
	}
	joined := strings.Join(report.Violations, "\n")
	if !strings.Contains(joined, "2 Pods of ExtractorClass capped in flight") || !strings.Contains(joined, "job tenant/waits stayed Queued") {
		t.Errorf("violations:\n%s\nwant the cap exceeded and tenant/waits queued while a slot was free", joined)
	}
}
