package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apiresource "k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
)

func newStatusCommand(o *Options) *cobra.Command {
	return &cobra.Command{
		Use:   "status NAME",
		Short: "Show an ExtractionJob's phase, class, queue position, last error, result and attempt history",
		Long: `Show an ExtractionJob's phase, format, ExtractorClass, source, retries,
message, the time until its next retry, its last error, its result, and its
attempt history with the memory each attempt ran with.

For a Queued job it also shows its position in its class's queue, first come,
first served by the time the job became ready (its creation, or the
nextRetryAt of a retry). The position counts the Queued jobs you may list: all
namespaces if RBAC lets you, else only the job's namespace, and it says so.
The queue skips a namespace at its maxRunningPerNamespace, so a job can start
before jobs ahead of it.

Needs RBAC "get" on ` + resource + `, and "list" for the queue position.`,
		Example: `  kubectl extraction status drawing-42 -n extraction`,
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
			return Status(cmd.Context(), c, o.Streams.Out, key, o.Clock)
		},
	}
}

// Status writes a job's status for people, with times relative to clk.
func Status(ctx context.Context, c client.Client, out io.Writer, key types.NamespacedName, clk clock.PassiveClock) error {
	job := &ejv1.ExtractionJob{}
	if err := c.Get(ctx, key, job); err != nil {
		return explain(err, "get", key)
	}
	queue := ""
	if job.Status.Phase == ejv1.PhaseQueued && job.Status.ExtractorClassName != "" {
		pos, err := findQueuePosition(ctx, c, job, defaultChunkSize)
		if err != nil {
			return explain(err, "list", types.NamespacedName{Namespace: key.Namespace})
		}
		queue = pos.String()
	}
	circuit, err := classCircuit(ctx, c, job, clk.Now())
	if err != nil {
		return err
	}
	return writeStatus(out, job, queue, circuit, clk.Now())
}

// classCircuit describes the circuit breaker of the job's class, or "" when
// the class has none, is gone, or the user may not read it.
func classCircuit(ctx context.Context, c client.Client, job *ejv1.ExtractionJob, now time.Time) (string, error) {
	name := job.Status.ExtractorClassName
	if name == "" {
		return "", nil
	}
	class := &ejv1.ExtractorClass{}
	switch err := c.Get(ctx, types.NamespacedName{Name: name}, class); {
	case apierrors.IsNotFound(err) || apierrors.IsForbidden(err):
		return "", nil
	case err != nil:
		return "", explainKind(err, classKind, "get", types.NamespacedName{Name: name})
	case class.Spec.CircuitBreaker == nil:
		return "", nil
	}
	return circuitSummary(class.Status.Circuit, now) + " (ExtractorClass " + name + ")", nil
}

// writeStatus writes the job's status; queue is its queue position and
// circuit its class's circuit breaker, each written when not empty.
func writeStatus(out io.Writer, job *ejv1.ExtractionJob, queue, circuit string, now time.Time) error {
	st := job.Status
	w := &fieldWriter{out: out}
	w.field("Name", job.Name)
	w.field("Namespace", job.Namespace)
	w.field("Phase", phaseOrNone(st.Phase))
	w.field("Format", string(job.Spec.Format))
	if class := extractorClass(job); class != "" {
		w.field("Extractor", class)
	}
	w.field("Source", job.Spec.Source.URL)
	w.field("Retries", orNone(st.Retries))
	if st.DisruptionCount > 0 {
		w.field("Disruptions", strconv.Itoa(int(st.DisruptionCount)))
	}
	if job.Spec.Cancel && st.Phase != ejv1.PhaseCancelled {
		w.field("Cancel", "requested (spec.cancel is true)")
	}
	if token := job.Annotations[ejv1.RetryRequestAnnotation]; token != "" && token != st.LastHandledRetryRequest {
		w.field("Retry", fmt.Sprintf("requested (%s), not handled by the operator yet", token))
	}
	w.field("Message", orNone(st.Message))
	if queue != "" {
		w.field("Queue", queue)
	}
	if circuit != "" {
		w.field("Circuit", circuit)
	}
	w.field("Next retry", nextRetry(st.NextRetryAt, now))
	w.field("Pod", orNone(st.PodName))
	if st.StartTime != nil {
		w.field("Started", ago(st.StartTime.Time, now)+" ("+timestamp(st.StartTime.Time)+")")
	}
	if st.CompletionTime != nil {
		w.field("Completed", ago(st.CompletionTime.Time, now)+" ("+timestamp(st.CompletionTime.Time)+")")
	}

	if f := st.LastFailure; f == nil {
		w.field("Last error", "<none>")
	} else {
		w.line("Last error:")
		w.indent = "  "
		w.field("Type", f.ErrorType)
		w.field("Class", string(f.Class))
		w.field("Exit code", exitCode(f.ExitCode))
		if f.Reason != "" {
			w.field("Reason", f.Reason)
		}
		w.field("Message", orNone(f.Message))
		w.indent = ""
	}

	if st.Result == nil || len(st.Result.Raw) == 0 {
		w.field("Result", "<none>")
	} else {
		w.line("Result:")
		var pretty bytes.Buffer
		if err := json.Indent(&pretty, st.Result.Raw, "  ", "  "); err != nil {
			w.line("  " + string(st.Result.Raw))
		} else {
			w.line("  " + pretty.String())
		}
	}

	if len(st.Attempts) == 0 {
		w.field("Attempts", "<none>")
		return w.err
	}
	w.line(fmt.Sprintf("Attempts (latest %d, oldest first):", len(st.Attempts)))
	if w.err != nil {
		return w.err
	}
	return writeAttempts(out, st.Attempts, now)
}

// extractorClass says which ExtractorClass runs the job's attempts and how it
// was chosen, or "" before the job has or names one.
func extractorClass(job *ejv1.ExtractionJob) string {
	inUse, named := job.Status.ExtractorClassName, job.Spec.ExtractorClassName
	switch {
	case inUse != "" && named == "":
		return inUse + " (the default ExtractorClass for " + string(job.Spec.Format) + ")"
	case inUse != "":
		return inUse + " (ExtractorClass)"
	case named != "":
		return named + " (ExtractorClass named by the job, not in use yet)"
	}
	return ""
}

// writeAttempts writes the attempt history, with a MEMORY column when any
// attempt's class set a memory limit.
func writeAttempts(out io.Writer, attempts []ejv1.AttemptRecord, now time.Time) error {
	withMemory := slices.ContainsFunc(attempts, func(a ejv1.AttemptRecord) bool { return a.Memory != nil })
	tw := newTable(out)
	header := "  ATTEMPT\tPOD\tSTARTED\tDURATION\tOUTCOME\tERROR\tCLASS\tEXIT"
	if withMemory {
		header += "\tMEMORY"
	}
	fmt.Fprintln(tw, header)
	for _, a := range attempts {
		started, took := "-", "-"
		if !a.StartTime.IsZero() {
			started = ago(a.StartTime.Time, now)
			end := now
			if a.FinishTime != nil {
				end = a.FinishTime.Time
			}
			took = compactDuration(end.Sub(a.StartTime.Time).Round(time.Second))
		}
		row := fmt.Sprintf("  %d\t%s\t%s\t%s\t%s\t%s\t%s\t%s", a.Attempt, orDash(a.PodName), started, took,
			orDash(string(a.Outcome)), orDash(a.ErrorType), orDash(string(a.Class)), exitCode(a.ExitCode))
		if withMemory {
			row += "\t" + memory(a.Memory)
		}
		fmt.Fprintln(tw, row)
	}
	return tw.Flush()
}

// fieldWriter writes "Label:  value" lines, aligned, remembering the first
// write error.
type fieldWriter struct {
	out    io.Writer
	indent string
	err    error
}

const labelWidth = 12

func (w *fieldWriter) field(label, value string) {
	pad := labelWidth - len(w.indent) - len(label)
	if pad < 1 {
		pad = 1
	}
	prefix := w.indent + label + ":" + strings.Repeat(" ", pad)
	// Continuation lines of a multi-line value line up under its first line.
	value = strings.ReplaceAll(strings.TrimRight(value, "\n"), "\n", "\n"+strings.Repeat(" ", len(prefix)))
	w.line(prefix + value)
}

func (w *fieldWriter) line(s string) {
	if w.err == nil {
		_, w.err = fmt.Fprintln(w.out, s)
	}
}

// nextRetry says when a scheduled retry starts: "in 2m3s", or "due" once its
// time has come. It rounds up, so it never says a retry is closer than it is.
func nextRetry(at *ejv1.PreciseTime, now time.Time) string {
	if at == nil {
		return "<none>"
	}
	left := at.Sub(now)
	if left <= 0 {
		return "due (was " + timestamp(at.Time) + ")"
	}
	left = (left + time.Second - 1).Truncate(time.Second)
	return "in " + compactDuration(left) + " (" + timestamp(at.Time) + ")"
}

// compactDuration writes a whole-second duration as Go does, without the zero
// units at its end: 2m3s, 5m, 1h, 1h0m5s.
func compactDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// ago says how long before now t was, as kubectl writes ages.
func ago(t, now time.Time) string {
	return duration.HumanDuration(now.Sub(t)) + " ago"
}

func timestamp(t time.Time) string {
	return t.UTC().Format(time.RFC3339)
}

func exitCode(code *int32) string {
	if code == nil {
		return "-"
	}
	return strconv.Itoa(int(*code))
}

func memory(q *apiresource.Quantity) string {
	if q == nil {
		return "-"
	}
	return q.String()
}

func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// newTable returns a tabwriter laid out as kubectl's tables are.
func newTable(out io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(out, 6, 4, 3, ' ', 0)
}
