package report

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"slices"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/pybase/extraction-operator/test/bench/measure"
)

var (
	ink       = color.RGBA{40, 40, 40, 255}
	colOp     = color.RGBA{31, 119, 180, 255}  // operator
	colJob    = color.RGBA{255, 127, 14, 255}  // Job controller
	colCeil   = color.RGBA{44, 160, 44, 255}   // API ceiling
	colStatus = color.RGBA{148, 103, 189, 255} // status writes
	colEvent  = color.RGBA{188, 189, 34, 255}  // events
	colOther  = color.RGBA{140, 86, 75, 255}   // other writes
	colEarly  = color.RGBA{214, 39, 40, 255}
)

// lighter is a colour halfway to white, for the p50 next to a p99.
func lighter(c color.RGBA) color.RGBA {
	return color.RGBA{c.R/2 + 127, c.G/2 + 127, c.B/2 + 127, 255}
}

func sideColor(side string) color.RGBA {
	switch {
	case IsOperator(side):
		return colOp
	case side == "job-controller":
		return colJob
	}
	return colCeil
}

// bar is one bar, made of stacked segments, with a label under it.
type bar struct {
	label    string // may hold "\n"
	segments []segment
}

type segment struct {
	value float64
	color color.RGBA
}

type legendItem struct {
	name  string
	color color.RGBA
}

// panel is one bar chart: what the chart shows, apart from how gonum/plot draws it.
type panel struct {
	title string
	// note is a line under the title, for figures the bars do not show.
	note   string
	bars   []bar
	legend []legendItem
	// marker, when positive, draws a dashed line at this value, for a target.
	marker      float64
	markerLabel string
}

// chartW and chartRowH are the chart's width and the height of one row of
// two panels, in pixels at chartDPI.
const (
	chartW, chartRowH = 1400, 500
	chartDPI          = 96
)

// chartPanels are the four panels of scenarios 1-4, each saying so when
// it was not measured, then the queue's panel when the queue was measured. A
// report of the queue alone draws the queue's panel alone.
func chartPanels(r *Report) []panel {
	panels := []panel{throughputPanel(r), writesPanel(r), latenessPanel(r), latencyPanel(r)}
	queue := queuePanel(r)
	if len(queue.bars) == 0 {
		return panels
	}
	if !slices.ContainsFunc(panels, func(p panel) bool { return len(p.bars) > 0 }) {
		return []panel{queue}
	}
	return append(panels, queue)
}

// renderChart draws the panels two to a row under a title, as a PNG.
func renderChart(r *Report) ([]byte, error) {
	px := func(n int) vg.Length { return vg.Length(n) * vg.Inch / chartDPI }
	panels := chartPanels(r)
	img := vgimg.NewWith(vgimg.UseWH(px(chartW), px(chartRowH*((len(panels)+1)/2))), vgimg.UseDPI(chartDPI))
	dc := draw.New(img)
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())

	title := fmt.Sprintf("extraction-operator benchmark, %s, %d CPUs", r.Started.Format("2006-01-02"), r.Machine.CPUs)
	titleStyle := draw.TextStyle{Color: ink, Font: sans(16), Handler: plot.DefaultTextHandler, YAlign: draw.YTop}
	top := dc.Max.Y - px(12)
	dc.FillText(titleStyle, vg.Point{X: dc.Min.X + px(20), Y: top}, title)
	dc.Max.Y = top - titleStyle.Height(title) - px(8)

	cols := min(2, len(panels))
	rows := (len(panels) + cols - 1) / cols
	plots := make([][]*plot.Plot, rows)
	for j := range plots {
		plots[j] = make([]*plot.Plot, cols)
	}
	for i, p := range panels {
		pl, err := p.plot()
		if err != nil {
			return nil, fmt.Errorf("drawing %q: %w", p.title, err)
		}
		plots[i/cols][i%cols] = pl
	}
	tiles := draw.Tiles{Rows: rows, Cols: cols, PadX: px(30), PadY: px(24), PadLeft: px(12), PadRight: px(16), PadBottom: px(8)}
	canvases := plot.Align(plots, tiles, dc)
	for j := range plots {
		for i, pl := range plots[j] {
			pl.Draw(canvases[j][i])
		}
	}
	var buf bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("encoding the chart: %w", err)
	}
	return buf.Bytes(), nil
}

// plot lays the panel out as a gonum plot: each segment is a one-value bar
// chart at its bar's position, stacked on the segment below it, since a
// gonum bar chart has one colour and the bars here are coloured by side.
func (p panel) plot() (*plot.Plot, error) {
	pl := plot.New()
	pl.Title.Text = p.title
	if p.note != "" {
		pl.Title.Text += "\n" + p.note
	}
	pl.Title.TextStyle.Font = sans(13)
	pl.Title.Padding = vg.Points(6)
	pl.X.Tick.Label.Font = sans(9)
	pl.Y.Tick.Label.Font = sans(10)
	grid := plotter.NewGrid()
	grid.Vertical.Color = nil // the x axis is nominal
	pl.Add(grid)
	pl.X.Padding, pl.Y.Padding = 0, 0

	if len(p.bars) == 0 {
		pl.HideX()
		pl.HideY()
		pl.Title.Text += "\n\nnot measured"
		return pl, nil
	}
	width := vg.Points(300 / float64(max(len(p.bars), 5)))
	labels := make([]string, len(p.bars))
	var totals plotter.XYs
	var totalLabels []string
	for i, b := range p.bars {
		labels[i] = b.label
		var below *plotter.BarChart
		acc := 0.0
		for _, s := range b.segments {
			if s.value <= 0 {
				continue
			}
			bc, err := plotter.NewBarChart(plotter.Values{s.value}, width)
			if err != nil {
				return nil, err
			}
			bc.Color, bc.LineStyle.Width = s.color, 0
			if below != nil {
				bc.StackOn(below)
			}
			bc.XMin = float64(i)
			pl.Add(bc)
			below, acc = bc, acc+s.value
		}
		totals = append(totals, plotter.XY{X: float64(i), Y: acc})
		totalLabels = append(totalLabels, trimFloat(acc))
	}
	pl.NominalX(labels...)
	values, err := plotter.NewLabels(plotter.XYLabels{XYs: totals, Labels: totalLabels})
	if err != nil {
		return nil, err
	}
	for i := range values.TextStyle {
		values.TextStyle[i].XAlign = draw.XCenter
		values.TextStyle[i].Font = sans(9)
	}
	values.Offset = vg.Point{Y: vg.Points(3)}
	pl.Add(values)

	topValue := p.marker
	for _, t := range totals {
		topValue = math.Max(topValue, t.Y)
	}
	// Room above the highest bar for its value and for the legend's lines.
	entries := len(p.legend)
	if p.marker > 0 {
		entries++
	}
	pl.Y.Min, pl.Y.Max = 0, math.Max(topValue*(1.12+0.07*float64(entries)), 1)
	pl.X.Min, pl.X.Max = -0.6, float64(len(p.bars))-0.4

	if p.marker > 0 {
		line, err := plotter.NewLine(plotter.XYs{{X: pl.X.Min, Y: p.marker}, {X: pl.X.Max, Y: p.marker}})
		if err != nil {
			return nil, err
		}
		line.Color, line.Width, line.Dashes = colEarly, vg.Points(1.5), []vg.Length{vg.Points(5), vg.Points(3)}
		pl.Add(line)
		pl.Legend.Add(p.markerLabel, line)
	}
	for _, l := range p.legend {
		pl.Legend.Add(l.name, swatch(l.color))
	}
	pl.Legend.Top, pl.Legend.Left = true, true
	pl.Legend.XOffs = vg.Points(6)
	pl.Legend.TextStyle.Font = sans(10)
	return pl, nil
}

// sans is the chart's typeface, Liberation Sans, which gonum/plot embeds.
func sans(points float64) font.Font {
	return font.From(font.Font{Typeface: "Liberation", Variant: "Sans"}, vg.Points(points))
}

// swatch is a legend entry's coloured square.
type swatch color.RGBA

func (s swatch) Thumbnail(c *draw.Canvas) {
	r := c.Rectangle
	c.FillPolygon(color.RGBA(s), []vg.Point{r.Min, {X: r.Min.X, Y: r.Max.Y}, r.Max, {X: r.Max.X, Y: r.Min.Y}})
}

func throughputPanel(r *Report) panel {
	p := panel{title: "1. Throughput, jobs/s (higher is better)"}
	for _, res := range r.of("throughput") {
		if res.Error != "" {
			continue
		}
		p.bars = append(p.bars, bar{label: shortSide(res.Side) + "\n" + res.Limits.Name, segments: []segment{{res.JobsPerSecond, sideColor(res.Side)}}})
	}
	p.legend = []legendItem{{"operator", colOp}, {"job controller", colJob}, {"api ceiling", colCeil}}
	return p
}

func writesPanel(r *Report) panel {
	p := panel{title: "2. API writes per attempt", note: "s1 throughput, s2 retry mix", marker: 4, markerLabel: "target: 4 non-event writes"}
	for _, sc := range []string{"throughput", "retry-mix"} {
		for _, res := range r.of(sc) {
			if res.Error != "" || res.Side == "api-ceiling" && sc != "throughput" {
				continue
			}
			b := res.PerAttempt
			label := shortSide(res.Side) + "\n" + map[string]string{"throughput": "s1 ", "retry-mix": "s2 "}[sc] + res.Limits.Name
			p.bars = append(p.bars, bar{label: label, segments: []segment{
				{b.PodWrites, sideColor(res.Side)}, {b.StatusWrites, colStatus}, {b.OtherWrites, colOther}, {b.Events, colEvent},
			}})
		}
	}
	p.legend = []legendItem{{"pod writes (side colour)", ink}, {"status", colStatus}, {"other", colOther}, {"events", colEvent}}
	return p
}

// latenessWidth and latenessBuckets make the lateness histogram: 0 … 400 ms
// in 25 ms steps, the last bucket open-ended.
const (
	latenessWidth   = 25
	latenessBuckets = 16
)

func latenessPanel(r *Report) panel {
	p := panel{title: fmt.Sprintf("3. Retry lateness, operator: retries per %d ms", latenessWidth)}
	op := r.find("retry-mix", "operator", "")
	if op == nil || op.Lateness == nil {
		return p
	}
	early := 0
	var onTime []time.Duration
	for _, ms := range op.LatenessMs {
		if ms < 0 {
			early++
			continue
		}
		onTime = append(onTime, time.Duration(ms*float64(time.Millisecond)))
	}
	p.bars = append(p.bars, bar{label: "early", segments: []segment{{float64(early), colEarly}}})
	for i, c := range measure.Histogram(onTime, 0, latenessWidth*time.Millisecond, latenessBuckets) {
		label := fmt.Sprintf("%d", i*latenessWidth)
		if i == latenessBuckets-1 {
			label += "+"
		}
		p.bars = append(p.bars, bar{label: label, segments: []segment{{float64(c), colOp}}})
	}
	p.note = fmt.Sprintf("p50 %.0f ms, p99 %.0f ms, max %.0f ms, %d early; target p99 250 ms", op.Lateness.P50, op.Lateness.P99, op.Lateness.Max, early)
	p.legend = []legendItem{{"on time or late (ms late)", colOp}, {"early", colEarly}}
	return p
}

func latencyPanel(r *Report) panel {
	p := panel{title: "4. Create to first pod, p50 / p99 ms"}
	for _, res := range r.of("latency") {
		if res.Error != "" || res.StartLatency == nil {
			continue
		}
		c := sideColor(res.Side)
		light := lighter(c)
		label := fmt.Sprintf("%s\n%g/s", shortSide(res.Side), res.Rate)
		p.bars = append(p.bars,
			bar{label: label + "\np50", segments: []segment{{res.StartLatency.P50, light}}},
			bar{label: label + "\np99", segments: []segment{{res.StartLatency.P99, c}}})
	}
	p.note = "p50 light, p99 dark"
	p.legend = []legendItem{{"operator", colOp}, {"job controller", colJob}, {"api ceiling", colCeil}}
	return p
}

func queuePanel(r *Report) panel {
	p := panel{title: "5. Queue: slot freed to next pod, p50 / p99 ms", marker: 100, markerLabel: "target: p99 100 ms"}
	var notes []string
	for _, res := range r.of("queue") {
		q := res.Queue
		if res.Error != "" || q.MaxRunning == 0 || q.SlotTaken == nil || q.SlotTaken.Count == 0 {
			continue
		}
		label := fmt.Sprintf("%d jobs\nmax %d", res.Jobs, q.MaxRunning)
		p.bars = append(p.bars,
			bar{label: label + "\np50", segments: []segment{{q.SlotTaken.P50, lighter(colOp)}}},
			bar{label: label + "\np99", segments: []segment{{q.SlotTaken.P99, colOp}}})
		notes = append(notes, fmt.Sprintf("%d jobs: peak %d in flight, %.2f writes/job", res.Jobs, q.PeakInFlight, writesPerJob(res)))
	}
	p.note = strings.Join(notes, "; ")
	p.legend = []legendItem{{"p50", lighter(colOp)}, {"p99", colOp}}
	return p
}

func shortSide(side string) string {
	switch side {
	case "job-controller":
		return "job ctrl"
	case "api-ceiling":
		return "ceiling"
	}
	return side
}

func trimFloat(v float64) string {
	switch {
	case v >= 100 || v == math.Trunc(v):
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}
