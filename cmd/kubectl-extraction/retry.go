package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
)

func newRetryCommand(o *Options) *cobra.Command {
	return &cobra.Command{
		Use:   "retry NAME",
		Short: "Start a Failed or Cancelled ExtractionJob again",
		Long: `Start a Failed or Cancelled ExtractionJob again, with its retry count reset.

Sets the annotation ` + ejv1.RetryRequestAnnotation + ` to a fresh token;
on a job whose spec.cancel is true it also sets spec.cancel back to false, in
the same patch. Needs RBAC "get" and "patch" on ` + resource + `.`,
		Example: `  kubectl extraction retry drawing-42 -n extraction`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			key, err := o.key(args[0])
			if err != nil {
				return err
			}
			c, err := o.Client()
			if err != nil {
				return err
			}
			return Retry(cmd.Context(), c, o.Streams.Out, o.Streams.ErrOut, key, o.Clock.Now())
		},
	}
}

// Retry asks the operator to start a Failed or Cancelled job again: it sets
// the retry annotation to a token made from now that the job has not seen, and
// clears spec.cancel if it is set, in one merge patch over the version it
// read. It refuses jobs in other phases, whose retry the operator would ignore.
func Retry(ctx context.Context, c client.Client, out, errOut io.Writer, key types.NamespacedName, now time.Time) error {
	var (
		job         *ejv1.ExtractionJob
		token       string
		clearCancel bool
	)
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		job = &ejv1.ExtractionJob{}
		if err := c.Get(ctx, key, job); err != nil {
			return explain(err, "get", key)
		}
		switch phase := job.Status.Phase; phase {
		case ejv1.PhaseFailed, ejv1.PhaseCancelled:
		case "":
			return fmt.Errorf("extractionjob %s has not been started by the operator yet; only a Failed or Cancelled job can be retried", key)
		default:
			return fmt.Errorf("extractionjob %s is %s; only a Failed or Cancelled job can be retried", key, phase)
		}
		token = freshToken(now, job.Annotations[ejv1.RetryRequestAnnotation], job.Status.LastHandledRetryRequest)
		// The operator never restarts a job whose spec still asks to cancel it,
		// so a retry takes the cancel back, in the same patch.
		clearCancel = job.Spec.Cancel
		patch := map[string]any{
			"metadata": map[string]any{
				"resourceVersion": job.ResourceVersion, // refused with a Conflict if the job changed since
				"annotations":     map[string]string{ejv1.RetryRequestAnnotation: token},
			},
		}
		if clearCancel {
			patch["spec"] = map[string]any{"cancel": false}
		}
		if err := mergePatch(ctx, c, job, patch); err != nil {
			return explainPatch(err, key)
		}
		return nil
	})
	if err != nil {
		return err
	}

	fmt.Fprintf(out, "extractionjob %s: retry requested (%s=%s); it was %s", key, ejv1.RetryRequestAnnotation, token, job.Status.Phase)
	if job.Status.LastFailure != nil {
		fmt.Fprintf(out, " with %s", job.Status.LastFailure.ErrorType)
	}
	fmt.Fprintln(out)
	if clearCancel {
		fmt.Fprintf(out, "extractionjob %s: spec.cancel set back to false\n", key)
		if owner := gitOpsOwner(job); owner != "" {
			fmt.Fprintf(errOut, "Warning: extractionjob %s is managed by %s: if git sets spec.cancel: true, the next sync "+
				"sets it back and cancels the job again; change it in git too.\n", key, owner)
		}
	}
	fmt.Fprintf(out, "The operator starts a new attempt with the retry count reset. Follow it with: kubectl extraction status %s -n %s\n", key.Name, key.Namespace)
	return nil
}

// freshToken returns now in RFC 3339 with nanoseconds. Should the clock
// repeat itself, it counts on from the object's current and last handled
// tokens of the same time: 2031-05-06T07:08:09Z, then …09Z-2, …09Z-3.
func freshToken(now time.Time, current, handled string) string {
	base := now.UTC().Format(time.RFC3339Nano)
	last := 0
	for _, t := range []string{current, handled} {
		if t == base {
			last = max(last, 1)
		} else if rest, ok := strings.CutPrefix(t, base+"-"); ok {
			if n, err := strconv.Atoi(rest); err == nil {
				last = max(last, n)
			}
		}
	}
	if last == 0 {
		return base
	}
	return base + "-" + strconv.Itoa(last+1)
}

// mergePatch sends patch as a JSON merge patch of the object, as the
// plugin's field manager, and reads the patched object back into it.
func mergePatch(ctx context.Context, c client.Client, obj client.Object, patch map[string]any) error {
	data, err := json.Marshal(patch)
	if err != nil {
		return err
	}
	return c.Patch(ctx, obj, client.RawPatch(types.MergePatchType, data), client.FieldOwner(fieldManager))
}

// explainPatch explains a refused patch; a conflict is passed on untouched so
// that RetryOnConflict reads the job again.
func explainPatch(err error, key types.NamespacedName) error {
	return explainKindPatch(err, jobKind, key)
}

// explainKindPatch is explainPatch for an object of any of the plugin's kinds.
func explainKindPatch(err error, kind apiKind, key types.NamespacedName) error {
	if apierrors.IsConflict(err) {
		return err
	}
	return explainKind(err, kind, "patch", key)
}
