package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
)

func newCancelCommand(o *Options) *cobra.Command {
	return &cobra.Command{
		Use:   "cancel NAME",
		Short: "Cancel an ExtractionJob that has not finished",
		Long: `Cancel an ExtractionJob that has not finished by setting spec.cancel to true.

The operator deletes a running attempt's Pod and marks the job Cancelled; a
pending or retrying job is Cancelled at once. A finished job is left alone.
When Flux or Argo CD manages the job, the change is reverted at the next sync
unless it also goes to git; the command warns about that. Needs RBAC "get" and
"patch" on ` + resource + `.`,
		Example: `  kubectl extraction cancel drawing-42 -n extraction`,
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
			return Cancel(cmd.Context(), c, o.Streams.Out, o.Streams.ErrOut, key)
		},
	}
}

// Cancel sets spec.cancel on a job that has not finished, warning on errOut
// when a GitOps tool manages the job. A job that already finished, or whose
// cancel is already set, is left alone and said so.
func Cancel(ctx context.Context, c client.Client, out, errOut io.Writer, key types.NamespacedName) error {
	var (
		job   *ejv1.ExtractionJob
		phase ejv1.Phase // before the cancel
		done  string
	)
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		job = &ejv1.ExtractionJob{}
		if err := c.Get(ctx, key, job); err != nil {
			return explain(err, "get", key)
		}
		phase = job.Status.Phase
		switch {
		case job.Spec.Cancel:
			done = fmt.Sprintf("extractionjob %s: cancel was already requested (phase %s); nothing to do", key, phaseOrNone(phase))
			return nil
		case phase.Finished():
			done = fmt.Sprintf("extractionjob %s already finished as %s; cancel would change nothing, so it was not set", key, phase)
			return nil
		}
		return explainPatch(mergePatch(ctx, c, job, map[string]any{
			"metadata": map[string]any{"resourceVersion": job.ResourceVersion},
			"spec":     map[string]any{"cancel": true},
		}), key)
	})
	if err != nil {
		return err
	}
	if done != "" {
		fmt.Fprintln(out, done)
		return nil
	}
	if owner := gitOpsOwner(job); owner != "" {
		fmt.Fprintf(errOut, "Warning: extractionjob %s is managed by %s. This change will be reverted at the next sync "+
			"unless it goes to git: set spec.cancel: true in the manifest in git as well.\n", key, owner)
	}
	fmt.Fprintf(out, "extractionjob %s: cancel requested (spec.cancel=true); it was %s\n", key, phaseOrNone(phase))
	return nil
}

// phaseOrNone names a phase, or says that the operator has not set one yet.
func phaseOrNone(p ejv1.Phase) string {
	if p == "" {
		return "not started yet"
	}
	return string(p)
}
