package report

import (
	"bytes"
	"fmt"
	"image/color"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
)

// OutageResult is scenario 6: jobs of one class against a backend that
// answers ServiceUnavailable for a window, with the class's circuit breaker
// on or off. Times are seconds after the first create.
type OutageResult struct {
	Breaker            bool    `json:"breaker"`
	MaxRunning         int     `json:"maxRunning"`
	RunSeconds         int     `json:"runSeconds"`
	BackoffBaseSeconds float64 `json:"backoffBaseSeconds"`
	WindowSeconds      float64 `json:"windowSeconds"`
	// The breaker's settings; zero with the breaker off.
	ConsecutiveFailures int     `json:"consecutiveFailures,omitempty"`
	Probes              int     `json:"probes,omitempty"`
	OpenSeconds         float64 `json:"openSeconds,omitempty"`
	RampUpSeconds       float64 `json:"rampUpSeconds,omitempty"`

	// DownAt and UpAt are the window: attempts that end inside it end
	// ServiceUnavailable.
	DownAt float64 `json:"downAt"`
	UpAt   float64 `json:"upAt"`
	// Lost counts the jobs that ended Failed though the backend recovered.
	Lost int `json:"lost"`
	// DeadAttempts counts the attempts that ended inside the window.
	DeadAttempts int `json:"deadAttempts"`
	// FailedProbeRounds counts the circuit's openings after the first.
	FailedProbeRounds int `json:"failedProbeRounds"`
	// PeakAfterRecovery is the most attempts of the class in flight at once
	// from the end of the window to AfterRecoverySeconds after it, and
	// StartedAfterRecovery the attempts created in that span.
	PeakAfterRecovery    int     `json:"peakAfterRecovery"`
	StartedAfterRecovery int     `json:"startedAfterRecovery"`
	AfterRecoverySeconds float64 `json:"afterRecoverySeconds"`
	// RecoveryToLastDone is from the end of the window to the last job
	// finished; negative when every job had finished before it.
	RecoveryToLastDone float64 `json:"recoveryToLastDoneSeconds"`
	// InFlightAtDown counts the attempts of the class in flight when the
	// backend went down.
	InFlightAtDown int `json:"inFlightAtDown"`
	// RetrySpan says how soon the jobs came to their last allowed attempt.
	RetrySpan RetrySpan       `json:"retrySpan"`
	Timeline  []OutagePoint   `json:"timeline"`
	Circuit   []CircuitChange `json:"circuit,omitempty"`
}

// BreakerName is "on" or "off".
func (o *OutageResult) BreakerName() string {
	if o.Breaker {
		return "on"
	}
	return "off"
}

// DeadAttemptsAllowed is the target's bound on the attempts against the
// dead backend with the breaker on: the failures that open the circuit, the
// attempts in flight when it opens, and every failed probe.
func (o *OutageResult) DeadAttemptsAllowed() int {
	return o.ConsecutiveFailures + o.MaxRunning + o.Probes*o.FailedProbeRounds
}

// RetrySpan measures the jobs that had an attempt against the dead backend:
// from the end of the first such attempt to the start of the job's last
// allowed attempt (maxRetries + 1). A job is lost only if that attempt
// starts, and ends, before the backend recovers.
type RetrySpan struct {
	// Jobs had an attempt against the dead backend; Reached of them started
	// their last allowed attempt, StartedBeforeRecovery of those inside the window.
	Jobs                  int `json:"jobs"`
	Reached               int `json:"reached"`
	StartedBeforeRecovery int `json:"startedBeforeRecovery"`
	// MinSeconds and MedianSeconds are over the jobs that reached it.
	MinSeconds    float64 `json:"minSeconds"`
	MedianSeconds float64 `json:"medianSeconds"`
}

// OutagePoint is one second of the outage scenario's timeline.
type OutagePoint struct {
	At       float64 `json:"at"`
	InFlight int     `json:"inFlight"` // the most attempts in flight in the second
	Last     int     `json:"last"`     // in flight at the end of the second
	Started  int     `json:"started"`  // attempts created in the second
	Dead     int     `json:"dead"`     // attempts that ended ServiceUnavailable in the second
}

// CircuitChange is the class's circuit as the harness's watch saw it change.
type CircuitChange struct {
	At        float64 `json:"at"`
	State     string  `json:"state"`
	OpenCount int     `json:"openCount"`
}

// outageSection renders scenario 6, both runs side by side.
func (r *Report) outageSection() string {
	rows := r.of("outage")
	if len(rows) == 0 {
		return ""
	}
	s := r.Settings
	o := rows[0].Outage
	head := fmt.Sprintf("\n### 6. Outage: %d jobs of one class, maxRunning %d, each attempt running %d s, backoff base %.0f s, against a backend that answers ServiceUnavailable for %s, limits %s (operator only)\n\n",
		s.OutageN, o.MaxRunning, o.RunSeconds, o.BackoffBaseSeconds, s.OutageWindow, s.OtherLimits.Name)
	head += "Attempts against the dead backend: attempts that ended inside the window. Just after recovery: from the end of the window to 20 s after it. The breaker, when on: consecutiveFailures, openDuration, probes, rampUp as in the class column. " +
		"Last attempt: a job's last allowed one (maxRetries + 1), for the jobs that had an attempt against the dead backend; its span is from the end of the job's first such attempt to its start.\n\n"
	t := newTable("Breaker", "Jobs Failed though the backend recovered", "Attempts against the dead backend", "In flight when it went down", "Failed probe rounds",
		"Peak in flight just after recovery", "Attempts started just after recovery", "Recovery → last job done s",
		"Jobs that met the dead backend / reached their last attempt / started it before recovery", "Span to the last attempt min / median s",
		"Attempts", "Seconds", "Outcomes")
	for _, res := range rows {
		o := res.Outage
		name := "off"
		if o.Breaker {
			name = fmt.Sprintf("on (%d failures, open %.0f s, %d probe, ramp-up %.0f s)", o.ConsecutiveFailures, o.OpenSeconds, o.Probes, o.RampUpSeconds)
		}
		if res.Error != "" {
			t.row(name, "error: "+res.Error)
			continue
		}
		rounds := "n/a"
		if o.Breaker {
			rounds = fmt.Sprint(o.FailedProbeRounds)
		}
		span := o.RetrySpan
		spanSeconds := "n/a"
		if span.Reached > 0 {
			spanSeconds = fmt.Sprintf("%s / %s", f1(span.MinSeconds), f1(span.MedianSeconds))
		}
		t.row(name, fmt.Sprint(o.Lost), fmt.Sprint(o.DeadAttempts), fmt.Sprint(o.InFlightAtDown), rounds, fmt.Sprint(o.PeakAfterRecovery), fmt.Sprint(o.StartedAfterRecovery),
			f1(o.RecoveryToLastDone), fmt.Sprintf("%d / %d / %d", span.Jobs, span.Reached, span.StartedBeforeRecovery),
			spanSeconds, fmt.Sprint(res.Attempts), f1(res.Seconds), outcomes(res))
	}
	return head + t.String()
}

// outageTargets checks the breaker's run against the targets.
func (r *Report) outageTargets() []check {
	var out []check
	for _, res := range r.of("outage") {
		o := res.Outage
		if res.Error != "" || !o.Breaker {
			continue
		}
		out = append(out,
			check{"outage, breaker on: 0 jobs lost", fmt.Sprint(o.Lost), verdict(o.Lost == 0)},
			check{"outage, breaker on: attempts against the dead backend ≤ consecutiveFailures + maxRunning + probes × failed probe rounds",
				fmt.Sprintf("%d ≤ %d + %d + %d × %d = %d", o.DeadAttempts, o.ConsecutiveFailures, o.MaxRunning, o.Probes, o.FailedProbeRounds, o.DeadAttemptsAllowed()),
				verdict(o.DeadAttempts <= o.DeadAttemptsAllowed())},
			check{"outage, breaker on: no burst above maxRunning after recovery", fmt.Sprintf("peak %d in flight, maxRunning %d", o.PeakAfterRecovery, o.MaxRunning),
				verdict(o.PeakAfterRecovery <= o.MaxRunning)})
	}
	return out
}

// The window and the open circuit are translucent (premultiplied alpha),
// so that where they overlap both show.
var (
	colWindow = color.RGBA{40, 40, 40, 60}
	colOpen   = color.RGBA{90, 54, 0, 90}
)

// renderOutageChart draws the attempts over time of every outage run, one
// panel per run under each other, on the same axes: attempts in flight,
// attempts started and attempts against the dead backend per second, the
// window shaded grey and the open circuit orange.
func renderOutageChart(r *Report) ([]byte, error) {
	var plots [][]*plot.Plot
	maxT, maxY := 0.0, 0.0
	for _, res := range r.of("outage") {
		o := res.Outage
		if res.Error != "" {
			continue
		}
		for _, p := range o.Timeline {
			maxT, maxY = max(maxT, p.At+1), max(maxY, float64(max(p.InFlight, p.Started, p.Dead)))
		}
	}
	maxY = max(maxY, workloadMaxRunning(r)) * 1.5 // room for the legend above the lines
	for _, res := range r.of("outage") {
		if res.Error != "" {
			continue
		}
		pl, err := outagePlot(res, maxT, maxY)
		if err != nil {
			return nil, err
		}
		plots = append(plots, []*plot.Plot{pl})
	}
	if len(plots) == 0 {
		return nil, fmt.Errorf("no outage run to draw")
	}
	px := func(n int) vg.Length { return vg.Length(n) * vg.Inch / chartDPI }
	img := vgimg.NewWith(vgimg.UseWH(px(chartW), px(chartRowH*len(plots))), vgimg.UseDPI(chartDPI))
	dc := draw.New(img)
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())
	tiles := draw.Tiles{Rows: len(plots), Cols: 1, PadY: px(24), PadTop: px(8), PadLeft: px(12), PadRight: px(16), PadBottom: px(8)}
	canvases := plot.Align(plots, tiles, dc)
	for j := range plots {
		plots[j][0].Draw(canvases[j][0])
	}
	var buf bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("encoding the outage chart: %w", err)
	}
	return buf.Bytes(), nil
}

func workloadMaxRunning(r *Report) float64 {
	for _, res := range r.of("outage") {
		return float64(res.Outage.MaxRunning)
	}
	return 0
}

func outagePlot(res *Result, maxT, maxY float64) (*plot.Plot, error) {
	o := res.Outage
	pl := plot.New()
	pl.Title.Text = fmt.Sprintf("6. Outage, breaker %s: %d jobs Failed, %d attempts against the dead backend, peak %d in flight after recovery, last job done %.0f s after it",
		o.BreakerName(), o.Lost, o.DeadAttempts, o.PeakAfterRecovery, o.RecoveryToLastDone)
	pl.Title.TextStyle.Font = sans(13)
	pl.Title.Padding = vg.Points(6)
	pl.X.Label.Text, pl.Y.Label.Text = "seconds after the first create", "attempts"
	pl.X.Label.TextStyle.Font, pl.Y.Label.TextStyle.Font = sans(10), sans(10)
	pl.X.Tick.Label.Font, pl.Y.Tick.Label.Font = sans(10), sans(10)
	pl.X.Min, pl.X.Max, pl.Y.Min, pl.Y.Max = 0, maxT, 0, maxY

	band := func(from, to float64, c color.RGBA) (*plotter.Polygon, error) {
		poly, err := plotter.NewPolygon(plotter.XYs{{X: from, Y: 0}, {X: from, Y: maxY}, {X: to, Y: maxY}, {X: to, Y: 0}})
		if err != nil {
			return nil, err
		}
		poly.Color, poly.LineStyle.Width = c, 0
		return poly, nil
	}
	window, err := band(o.DownAt, o.UpAt, colWindow)
	if err != nil {
		return nil, err
	}
	pl.Add(window)
	pl.Legend.Add(fmt.Sprintf("backend down (%.0f s)", o.WindowSeconds), swatch(colWindow))
	var openShown bool
	for i, c := range o.Circuit {
		if c.State != string(ejv1.CircuitOpen) {
			continue
		}
		end := maxT
		if i+1 < len(o.Circuit) {
			end = o.Circuit[i+1].At
		}
		open, err := band(c.At, end, colOpen)
		if err != nil {
			return nil, err
		}
		pl.Add(open)
		if !openShown {
			pl.Legend.Add("circuit open", swatch(colOpen))
			openShown = true
		}
	}
	pl.Add(plotter.NewGrid())

	series := func(value func(OutagePoint) int) plotter.XYs {
		xys := make(plotter.XYs, len(o.Timeline))
		for i, p := range o.Timeline {
			xys[i] = plotter.XY{X: p.At, Y: float64(value(p))}
		}
		return xys
	}
	for _, s := range []struct {
		name  string
		value func(OutagePoint) int
		color color.RGBA
		width float64
	}{
		{"attempts in flight (most in the second)", func(p OutagePoint) int { return p.InFlight }, colOp, 2},
		{"attempts started per second", func(p OutagePoint) int { return p.Started }, colStatus, 1},
		{"attempts ended ServiceUnavailable per second", func(p OutagePoint) int { return p.Dead }, colEarly, 1.5},
	} {
		line, err := plotter.NewLine(series(s.value))
		if err != nil {
			return nil, err
		}
		line.Color, line.Width = s.color, vg.Points(s.width)
		line.StepStyle = plotter.PostStep
		pl.Add(line)
		pl.Legend.Add(s.name, line)
	}
	limit, err := plotter.NewLine(plotter.XYs{{X: 0, Y: float64(o.MaxRunning)}, {X: maxT, Y: float64(o.MaxRunning)}})
	if err != nil {
		return nil, err
	}
	limit.Color, limit.Width, limit.Dashes = ink, vg.Points(1), []vg.Length{vg.Points(5), vg.Points(3)}
	pl.Add(limit)
	pl.Legend.Add(fmt.Sprintf("maxRunning %d", o.MaxRunning), limit)
	pl.Legend.Top = true
	pl.Legend.TextStyle.Font = sans(10)
	return pl, nil
}
