package main

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"strings"
)

// The chart is drawn with the standard library only (image/png and a
// bitmap font), so the harness adds no dependency to the module.

var (
	white     = color.RGBA{255, 255, 255, 255}
	ink       = color.RGBA{40, 40, 40, 255}
	grid      = color.RGBA{225, 225, 225, 255}
	colOp     = color.RGBA{31, 119, 180, 255}  // operator
	colJob    = color.RGBA{255, 127, 14, 255}  // Job controller
	colCeil   = color.RGBA{44, 160, 44, 255}   // API ceiling
	colStatus = color.RGBA{148, 103, 189, 255} // status writes
	colEvent  = color.RGBA{188, 189, 34, 255}  // events
	colOther  = color.RGBA{140, 86, 75, 255}   // other writes
	colEarly  = color.RGBA{214, 39, 40, 255}
)

func sideColor(side string) color.RGBA {
	switch {
	case isOperator(side):
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

// panel is one bar chart.
type panel struct {
	title  string
	unit   string
	bars   []bar
	legend []legendItem
	// marker, when positive, draws a dashed line at this value, for a target.
	marker      float64
	markerLabel string
}

const chartW, chartH = 1400, 1000

func renderChart(r *Report) ([]byte, error) {
	img := image.NewRGBA(image.Rect(0, 0, chartW, chartH))
	fillRect(img, 0, 0, chartW, chartH, white)
	title := fmt.Sprintf("extraction-operator benchmark, %s, %d CPUs", r.Started.Format("2006-01-02"), r.Machine.CPUs)
	drawText(img, 20, 12, 2, ink, title)
	panels := []panel{throughputPanel(r), writesPanel(r), latenessPanel(r), latencyPanel(r)}
	w, h := chartW/2, (chartH-40)/2
	for i, p := range panels {
		x, y := (i%2)*w, 40+(i/2)*h
		drawPanel(img, image.Rect(x+10, y+10, x+w-10, y+h-10), p)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func throughputPanel(r *Report) panel {
	p := panel{title: "1. Throughput, jobs/s (higher is better)", unit: "jobs/s"}
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
	p := panel{title: "2. API writes per attempt", unit: "writes", marker: 4, markerLabel: "target: 4 non-event writes"}
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
	p.legend = []legendItem{{"pod (side colour)", ink}, {"status", colStatus}, {"other", colOther}, {"events", colEvent}}
	return p
}

func latenessPanel(r *Report) panel {
	p := panel{title: "3. Retry lateness, operator: retries per 25 ms", unit: "retries"}
	op := r.find("retry-mix", "operator", "")
	if op == nil {
		return p
	}
	const width, n = 25.0, 16 // 0 … 400 ms, the last bucket open-ended
	early := 0
	buckets := make([]float64, n)
	for _, ms := range op.LatenessMs {
		if ms < 0 {
			early++
			continue
		}
		buckets[min(int(ms/width), n-1)]++
	}
	p.bars = append(p.bars, bar{label: "early", segments: []segment{{float64(early), colEarly}}})
	for i, c := range buckets {
		label := fmt.Sprintf("%.0f", float64(i)*width)
		if i == n-1 {
			label += "+"
		}
		p.bars = append(p.bars, bar{label: label, segments: []segment{{c, colOp}}})
	}
	p.legend = []legendItem{{fmt.Sprintf("p50 %.0f ms, p99 %.0f ms, max %.0f ms, %d early; target p99 250 ms", op.Lateness.P50, op.Lateness.P99, op.Lateness.Max, early), colOp}}
	return p
}

func latencyPanel(r *Report) panel {
	p := panel{title: "4. Create to first pod, p50 / p99 ms", unit: "ms"}
	for _, res := range r.of("latency") {
		if res.Error != "" || res.StartLatency == nil {
			continue
		}
		c := sideColor(res.Side)
		light := color.RGBA{c.R/2 + 127, c.G/2 + 127, c.B/2 + 127, 255}
		label := fmt.Sprintf("%s\n%g/s", shortSide(res.Side), res.Rate)
		p.bars = append(p.bars,
			bar{label: label + "\np50", segments: []segment{{res.StartLatency.P50, light}}},
			bar{label: label + "\np99", segments: []segment{{res.StartLatency.P99, c}}})
	}
	p.legend = []legendItem{{"p50 light, p99 dark", ink}}
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

func drawPanel(img *image.RGBA, area image.Rectangle, p panel) {
	drawText(img, area.Min.X, area.Min.Y, 2, ink, p.title)
	lx := area.Min.X
	for _, l := range p.legend {
		fillRect(img, lx, area.Min.Y+22, 10, 10, l.color)
		lx += 14 + drawText(img, lx+14, area.Min.Y+24, 1, ink, l.name) + 10
	}
	plot := image.Rect(area.Min.X+60, area.Min.Y+44, area.Max.X-10, area.Max.Y-40)
	maxV := 0.0
	for _, b := range p.bars {
		maxV = math.Max(maxV, total(b))
	}
	maxV = math.Max(maxV, p.marker)
	if len(p.bars) == 0 || maxV == 0 {
		drawText(img, plot.Min.X+10, plot.Min.Y+20, 2, ink, "not measured")
		return
	}
	top := niceCeil(maxV * 1.08)
	y := func(v float64) int { return plot.Max.Y - int(v/top*float64(plot.Dy())) }
	for i := 0; i <= 4; i++ {
		v := top * float64(i) / 4
		fillRect(img, plot.Min.X, y(v), plot.Dx(), 1, grid)
		label := trimFloat(v)
		drawText(img, plot.Min.X-8-textWidth(label, 1), y(v)-3, 1, ink, label)
	}
	fillRect(img, plot.Min.X, plot.Min.Y, 1, plot.Dy(), ink)
	fillRect(img, plot.Min.X, plot.Max.Y, plot.Dx(), 1, ink)

	slot := plot.Dx() / len(p.bars)
	barW := max(slot*7/10, 2)
	for i, b := range p.bars {
		x := plot.Min.X + i*slot + (slot-barW)/2
		acc := 0.0
		for _, s := range b.segments {
			if s.value <= 0 {
				continue
			}
			y0, y1 := y(acc+s.value), y(acc)
			fillRect(img, x, y0, barW, y1-y0, s.color)
			acc += s.value
		}
		value := trimFloat(acc)
		if slot >= textWidth(value, 1) {
			drawText(img, x+barW/2-textWidth(value, 1)/2, y(acc)-10, 1, ink, value)
		}
		for j, line := range strings.Split(b.label, "\n") {
			drawText(img, x+barW/2-textWidth(line, 1)/2, plot.Max.Y+6+j*10, 1, ink, line)
		}
	}
	if p.marker > 0 {
		my := y(p.marker)
		for x := plot.Min.X; x < plot.Max.X; x += 8 {
			fillRect(img, x, my, 4, 2, colEarly)
		}
		drawText(img, plot.Max.X-textWidth(p.markerLabel, 1), my-10, 1, colEarly, p.markerLabel)
	}
}

func total(b bar) float64 {
	sum := 0.0
	for _, s := range b.segments {
		sum += max(s.value, 0)
	}
	return sum
}

// niceCeil rounds v up to 1, 2, 2.5 or 5 times a power of ten, for round axis ticks.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	exp := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*exp >= v {
			return m * exp
		}
	}
	return 10 * exp
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
