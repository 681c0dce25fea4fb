package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
)

func newClassesCommand(o *Options) *cobra.Command {
	return &cobra.Command{
		Use:   "classes",
		Short: "List the ExtractorClasses with their formats, running attempts and queues",
		Long: `List the ExtractorClasses: the formats each serves, whether it is a default,
its running attempts against its maxRunning (RUNNING/MAX; "-" for no cap), the
jobs queued for a slot, its maxRunningPerNamespace and, when a class has a
circuit breaker, the state of its circuit. The counts are the
class's status, which the operator writes at most every few seconds.
Needs RBAC "list" on ` + classResource + ` (cluster-scoped).`,
		Example: `  kubectl extraction classes`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := o.Client()
			if err != nil {
				return err
			}
			return Classes(cmd.Context(), c, o.Streams.Out, o.Clock.Now())
		},
	}
}

// Classes writes a table of the ExtractorClasses, ordered by name.
// Times are relative to now.
func Classes(ctx context.Context, c client.Client, out io.Writer, now time.Time) error {
	list := &ejv1.ExtractorClassList{}
	if err := c.List(ctx, list); err != nil {
		return explainKind(err, classKind, "list", types.NamespacedName{})
	}
	if len(list.Items) == 0 {
		_, err := fmt.Fprintln(out, "No ExtractorClasses found: jobs stay Pending until a cluster admin creates one.")
		return err
	}
	slices.SortFunc(list.Items, func(a, b ejv1.ExtractorClass) int { return strings.Compare(a.Name, b.Name) })

	// The CIRCUIT column is there when a class has a circuit breaker.
	breakers := slices.ContainsFunc(list.Items, func(c ejv1.ExtractorClass) bool { return c.Spec.CircuitBreaker != nil })
	tw := newTable(out)
	header := "NAME\tFORMATS\tDEFAULT\tRUNNING/MAX\tQUEUED\tPER NAMESPACE"
	if breakers {
		header += "\tCIRCUIT"
	}
	fmt.Fprintln(tw, header)
	for _, class := range list.Items {
		formats := make([]string, len(class.Spec.Formats))
		for i, f := range class.Spec.Formats {
			formats[i] = string(f)
		}
		fmt.Fprintf(tw, "%s\t%s\t%t\t%d/%s\t%d\t%s", class.Name, strings.Join(formats, ","), class.Spec.Default,
			class.Status.Running, capOrDash(class.Spec.MaxRunning), class.Status.Queued, capOrDash(class.Spec.MaxRunningPerNamespace))
		switch {
		case !breakers:
		case class.Spec.CircuitBreaker == nil:
			fmt.Fprint(tw, "\t-")
		default:
			fmt.Fprint(tw, "\t"+circuitSummary(class.Status.Circuit, now))
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

// capOrDash writes a cap, or "-" for none.
func capOrDash(n *int32) string {
	if n == nil {
		return "-"
	}
	return strconv.Itoa(int(*n))
}
