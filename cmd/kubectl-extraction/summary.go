package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
)

// defaultChunkSize is how many jobs one List request asks for.
const defaultChunkSize = 500

// SummaryOptions chooses what Summary counts.
type SummaryOptions struct {
	// Namespace to count in; ignored when AllNamespaces is set.
	Namespace     string
	AllNamespaces bool
	// ChunkSize is the limit of each List request; the API server's continue
	// token fetches the rest.
	ChunkSize int64
}

func newSummaryCommand(o *Options) *cobra.Command {
	opts := SummaryOptions{ChunkSize: defaultChunkSize}
	cmd := &cobra.Command{
		Use:   "summary",
		Short: "Count ExtractionJobs by phase and by last error type",
		Long: `Count the ExtractionJobs of a namespace, or of all namespaces with -A, by
phase and by the error type of their last failure. The jobs are listed in
pages of --chunk-size, so even many thousands of jobs load the API server
little. Needs RBAC "list" on ` + resource + `.`,
		Example: `  kubectl extraction summary -n extraction
  kubectl extraction summary -A`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if opts.ChunkSize < 1 {
				return fmt.Errorf("--chunk-size must be at least 1")
			}
			if !opts.AllNamespaces {
				ns, err := o.Namespace()
				if err != nil {
					return err
				}
				opts.Namespace = ns
			}
			c, err := o.Client()
			if err != nil {
				return err
			}
			return Summary(cmd.Context(), c, o.Streams.Out, opts)
		},
	}
	cmd.Flags().BoolVarP(&opts.AllNamespaces, "all-namespaces", "A", false, "count the jobs of all namespaces")
	cmd.Flags().Int64Var(&opts.ChunkSize, "chunk-size", defaultChunkSize, "how many jobs to fetch per List request")
	return cmd
}

// noPhase stands for jobs the operator has not picked up yet.
const noPhase ejv1.Phase = "<none>"

// phaseOrder is the order of the phase table's rows and of phase columns:
// the API's, then jobs without a phase.
var phaseOrder = append(slices.Clone(ejv1.Phases), noPhase)

// counts are the numbers Summary reports.
type counts struct {
	total       int
	byPhase     map[ejv1.Phase]int
	byError     map[string]map[ejv1.Phase]int
	byNamespace map[string]map[ejv1.Phase]int
}

// Summary counts jobs by phase and by last error type and writes the tables to
// out. It lists the jobs page by page; should a continue token expire during
// a long listing, it counts again from the start.
func Summary(ctx context.Context, c client.Client, out io.Writer, opts SummaryOptions) error {
	if opts.ChunkSize < 1 {
		opts.ChunkSize = defaultChunkSize
	}
	scope := types.NamespacedName{Namespace: opts.Namespace}
	if opts.AllNamespaces {
		scope.Namespace = ""
	}
	var (
		n   counts
		err error
	)
	for range 3 {
		n, err = count(ctx, c, scope.Namespace, opts.ChunkSize)
		if !apierrors.IsResourceExpired(err) {
			break
		}
	}
	if err != nil {
		return explain(err, "list", scope)
	}
	return writeSummary(out, n, opts.AllNamespaces, scope.Namespace)
}

func count(ctx context.Context, c client.Client, namespace string, chunkSize int64) (counts, error) {
	n := counts{
		byPhase:     map[ejv1.Phase]int{},
		byError:     map[string]map[ejv1.Phase]int{},
		byNamespace: map[string]map[ejv1.Phase]int{},
	}
	err := eachJob(ctx, c, namespace, chunkSize, func(job *ejv1.ExtractionJob) {
		phase := job.Status.Phase
		if phase == "" {
			phase = noPhase
		}
		n.total++
		n.byPhase[phase]++
		inc(n.byNamespace, job.Namespace, phase)
		if f := job.Status.LastFailure; f != nil && f.ErrorType != "" {
			inc(n.byError, f.ErrorType, phase)
		}
	})
	if err != nil {
		return counts{}, err
	}
	return n, nil
}

func inc[K comparable](m map[K]map[ejv1.Phase]int, key K, phase ejv1.Phase) {
	if m[key] == nil {
		m[key] = map[ejv1.Phase]int{}
	}
	m[key][phase]++
}

func writeSummary(out io.Writer, n counts, all bool, namespace string) error {
	where := fmt.Sprintf("in namespace %q", namespace)
	if all {
		where = fmt.Sprintf("in %d namespaces", len(n.byNamespace))
	}
	fmt.Fprintf(out, "%d ExtractionJobs %s\n\n", n.total, where)

	tw := newTable(out)
	fmt.Fprintln(tw, "PHASE\tJOBS")
	for _, p := range phaseOrder {
		if p == noPhase && n.byPhase[p] == 0 {
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\n", p, n.byPhase[p])
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintln(out)
	if len(n.byError) == 0 {
		fmt.Fprintln(out, "No job has a last error.")
	} else {
		type row struct {
			errorType string
			jobs      int
		}
		rows := make([]row, 0, len(n.byError))
		for t, phases := range n.byError {
			rows = append(rows, row{t, sum(phases)})
		}
		slices.SortFunc(rows, func(a, b row) int {
			return cmp.Or(cmp.Compare(b.jobs, a.jobs), cmp.Compare(a.errorType, b.errorType))
		})
		tw = newTable(out)
		fmt.Fprintln(tw, "LAST ERROR\tJOBS\tPHASES")
		for _, r := range rows {
			fmt.Fprintf(tw, "%s\t%d\t%s\n", r.errorType, r.jobs, phaseList(n.byError[r.errorType]))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}

	if !all || len(n.byNamespace) == 0 {
		return nil
	}
	fmt.Fprintln(out)
	tw = newTable(out)
	phases := slices.DeleteFunc(slices.Clone(phaseOrder), func(p ejv1.Phase) bool { return p == noPhase && n.byPhase[p] == 0 })
	header := []string{"NAMESPACE", "JOBS"}
	for _, p := range phases {
		if p == noPhase {
			header = append(header, "NO PHASE")
			continue
		}
		header = append(header, strings.ToUpper(string(p)))
	}
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, ns := range slices.Sorted(maps.Keys(n.byNamespace)) {
		cells := []string{ns, strconv.Itoa(sum(n.byNamespace[ns]))}
		for _, p := range phases {
			cells = append(cells, strconv.Itoa(n.byNamespace[ns][p]))
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	return tw.Flush()
}

// phaseList writes counts by phase in phase order: "Retrying=1, Failed=2".
func phaseList(m map[ejv1.Phase]int) string {
	var parts []string
	for _, p := range phaseOrder {
		if m[p] > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", p, m[p]))
		}
	}
	return strings.Join(parts, ", ")
}

func sum(m map[ejv1.Phase]int) int {
	total := 0
	for _, v := range m {
		total += v
	}
	return total
}
