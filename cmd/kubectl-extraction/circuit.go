package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
)

func newCircuitCommand(o *Options) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "circuit",
		Short: "Act on the circuit breaker of an ExtractorClass",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "reset CLASS",
		Short: "Close an ExtractorClass's circuit breaker by hand",
		Long: `Close an ExtractorClass's circuit breaker by hand, once the service behind it is
known to be back: the jobs waiting for the circuit start again, spread over the
breaker's rampUp.

Sets the annotation ` + ejv1.CircuitResetRequestAnnotation + ` to a fresh
token; the operator echoes it to status.circuit.lastHandledResetRequest.
Needs RBAC "get" and "patch" on ` + classResource + ` (cluster-scoped).`,
		Example: `  kubectl extraction circuit reset werk24-api`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.Client()
			if err != nil {
				return err
			}
			return CircuitReset(cmd.Context(), c, o.Streams.Out, args[0], o.Clock.Now())
		},
	})
	return cmd
}

// CircuitReset asks the operator to close the class's circuit breaker: it
// sets the reset annotation to a token made from now that the class has not
// seen, in one merge patch over the version it read.
func CircuitReset(ctx context.Context, c client.Client, out io.Writer, name string, now time.Time) error {
	key := types.NamespacedName{Name: name}
	var (
		class *ejv1.ExtractorClass
		token string
	)
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		class = &ejv1.ExtractorClass{}
		if err := c.Get(ctx, key, class); err != nil {
			return explainKind(err, classKind, "get", key)
		}
		if class.Spec.CircuitBreaker == nil {
			return fmt.Errorf("extractorclass %s has no spec.circuitBreaker: there is no circuit to reset", name)
		}
		handled := ""
		if class.Status.Circuit != nil {
			handled = class.Status.Circuit.LastHandledResetRequest
		}
		token = freshToken(now, class.Annotations[ejv1.CircuitResetRequestAnnotation], handled)
		patch := map[string]any{"metadata": map[string]any{
			"resourceVersion": class.ResourceVersion, // refused with a Conflict if the class changed since
			"annotations":     map[string]string{ejv1.CircuitResetRequestAnnotation: token},
		}}
		if err := mergePatch(ctx, c, class, patch); err != nil {
			return explainKindPatch(err, classKind, key)
		}
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "extractorclass %s: circuit reset requested (%s=%s); it was %s\n",
		name, ejv1.CircuitResetRequestAnnotation, token, circuitSummary(class.Status.Circuit, now))
	fmt.Fprintf(out, "The operator closes the circuit, and the waiting jobs start. Follow it with: kubectl extraction classes\n")
	return nil
}

// circuitSummary describes a class's circuit in a few words.
func circuitSummary(c *ejv1.CircuitStatus, now time.Time) string {
	switch {
	case c == nil || c.State == "":
		return string(ejv1.CircuitClosed)
	case c.State == ejv1.CircuitOpen && c.ReopenAt != nil && now.Before(c.ReopenAt.Time):
		return fmt.Sprintf("Open after %s, probes in %s", orDash(c.LastErrorType), compactDuration(c.ReopenAt.Sub(now)))
	case c.State == ejv1.CircuitOpen, c.State == ejv1.CircuitHalfOpen:
		return fmt.Sprintf("HalfOpen after %s, probing", orDash(c.LastErrorType))
	}
	return string(c.State)
}
