package controllers

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
)

// The API server's cost of a status write scales with the stored object, not
// with the patch (BENCHMARKS.md, "What kube-apiserver spends on a job"), but
// a patch that resent the whole status would add to both. These tests keep
// the outcome's write a merge patch of what changed; they log its size, the
// figure BENCHMARKS.md quotes.

// recordStatusPatches keeps the body of every status patch.
func recordStatusPatches(t *testing.T, bodies *[][]byte) interceptor.Funcs {
	return interceptor.Funcs{
		SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
			data, err := patch.Data(obj)
			if err != nil {
				t.Fatal(err)
			}
			*bodies = append(*bodies, data)
			return c.SubResource(sub).Patch(ctx, obj, patch, opts...)
		},
	}
}

func TestTheOutcomesStatusPatchCarriesOnlyWhatChanged(t *testing.T) {
	registerTestScheme()
	for _, attempt := range []int32{2, 10} {
		job := settled(onAttempt(ejv1.PhaseRunning, attempt))
		job.Spec.RetryPolicy.MaxRetries = ptr.To[int32](10)
		var bodies [][]byte
		r, _, c := announcingReconciler(t, job, recordStatusPatches(t, &bodies))
		if err := c.Create(context.Background(), terminatedPod(attempt, corev1.PodSucceeded, 0, `{"pages":2}`)); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if _, err := reconcileOnce(r, job); err != nil {
				t.Fatal(err)
			}
		}
		if len(bodies) != 1 {
			t.Fatalf("attempt %d: %d status patches, want one", attempt, len(bodies))
		}
		t.Logf("attempt %d succeeded: status patch of %d bytes", attempt, len(bodies[0]))
		var patch struct {
			Metadata map[string]any `json:"metadata"`
			Status   map[string]any `json:"status"`
		}
		if err := json.Unmarshal(bodies[0], &patch); err != nil {
			t.Fatal(err)
		}
		// The spec, the job's startTime, attempt, podName, retryCount and
		// extractorClassName did not change, so the patch leaves them out.
		want := []string{"attempts", "completionTime", "conditions", "lastFailure", "message", "phase", "result", "retries"}
		if diff := cmp.Diff(want, slices.Sorted(maps.Keys(patch.Status))); diff != "" {
			t.Errorf("attempt %d: status fields in the patch (-want +got):\n%s", attempt, diff)
		}
		if diff := cmp.Diff([]string{"resourceVersion"}, slices.Sorted(maps.Keys(patch.Metadata))); diff != "" {
			t.Errorf("attempt %d: metadata in the patch (-want +got):\n%s", attempt, diff)
		}
	}
}
