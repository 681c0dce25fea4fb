package measure

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"k8s.io/client-go/kubernetes"
)

// ServerCounts are the API server's request counters: all requests, and
// those it refused (status 400 and above, such as 409 Conflict).
type ServerCounts struct {
	All, Refused Counts
}

// ScrapeAPIServer reads apiserver_request_total from the API server's own
// /metrics, so both sides are counted by the same instrument.
func ScrapeAPIServer(ctx context.Context, admin kubernetes.Interface) (ServerCounts, error) {
	body, err := admin.Discovery().RESTClient().Get().AbsPath("/metrics").Stream(ctx)
	if err != nil {
		return ServerCounts{}, fmt.Errorf("scraping the API server's /metrics: %w", err)
	}
	defer body.Close()
	return parseRequestTotals(body)
}

// legacyVerbs maps the verbs that the CRD handler reports (the request
// verb, upper-cased) to the HTTP-style verbs the built-in handlers report, so
// that a custom resource and a built-in one count alike.
var legacyVerbs = map[string]string{"CREATE": "POST", "UPDATE": "PUT"}

// parseRequestTotals sums apiserver_request_total over the labels the
// harness does not split by, and separately over refused requests.
func parseRequestTotals(r io.Reader) (ServerCounts, error) {
	families, err := ParseFamilies(r)
	if err != nil {
		return ServerCounts{}, err
	}
	out := ServerCounts{All: Counts{}, Refused: Counts{}}
	family, ok := families["apiserver_request_total"]
	if !ok {
		return out, nil
	}
	for _, m := range family.GetMetric() {
		var key RequestKey
		refused := false
		for _, l := range m.GetLabel() {
			switch l.GetName() {
			case "code":
				refused = len(l.GetValue()) == 3 && l.GetValue() >= "400"
			case "verb":
				key.Verb = l.GetValue()
			case "group":
				key.Group = l.GetValue()
			case "resource":
				key.Resource = l.GetValue()
			case "subresource":
				key.Subresource = l.GetValue()
			}
		}
		if key.Resource == "" {
			continue // /metrics, /healthz, discovery and other non-resource paths
		}
		if v, ok := legacyVerbs[key.Verb]; ok {
			key.Verb = v
		}
		out.All[key] += m.GetCounter().GetValue()
		if refused {
			out.Refused[key] += m.GetCounter().GetValue()
		}
	}
	return out, nil
}

// ParseFamilies parses a Prometheus text exposition.
func ParseFamilies(r io.Reader) (map[string]*dto.MetricFamily, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("parsing metrics: %w", err)
	}
	return families, nil
}

// Sub returns c − others, key by key, leaving out keys that end at zero.
func (c Counts) Sub(others ...Counts) Counts {
	out := Counts{}
	for k, v := range c {
		out[k] = v
	}
	for _, o := range others {
		for k, v := range o {
			out[k] -= v
		}
	}
	for k, v := range out {
		if v == 0 {
			delete(out, k)
		}
	}
	return out
}

// Add returns the sum of c and others.
func (c Counts) Add(others ...Counts) Counts {
	out := Counts{}
	for _, m := range append([]Counts{c}, others...) {
		for k, v := range m {
			out[k] += v
		}
	}
	return out
}

// Total sums the counts that match keep.
func (c Counts) Total(keep func(RequestKey) bool) float64 {
	var sum float64
	for k, v := range c {
		if keep(k) {
			sum += v
		}
	}
	return sum
}

// MarshalJSON writes the counts as {"VERB resource.group/sub": n}.
func (c Counts) MarshalJSON() ([]byte, error) {
	out := make(map[string]float64, len(c))
	for k, v := range c {
		out[k.String()] = v
	}
	return json.Marshal(out)
}

// UnmarshalJSON reads what MarshalJSON wrote, so a report can be rendered again.
func (c *Counts) UnmarshalJSON(raw []byte) error {
	var in map[string]float64
	if err := json.Unmarshal(raw, &in); err != nil {
		return err
	}
	*c = Counts{}
	for s, v := range in {
		k, err := parseRequestKey(s)
		if err != nil {
			return err
		}
		(*c)[k] = v
	}
	return nil
}

// parseRequestKey reverses RequestKey.String.
func parseRequestKey(s string) (RequestKey, error) {
	verb, rest, ok := strings.Cut(s, " ")
	if !ok {
		return RequestKey{}, fmt.Errorf("bad request key %q", s)
	}
	k := RequestKey{Verb: verb}
	rest, k.Subresource, _ = strings.Cut(rest, "/")
	k.Resource, k.Group, _ = strings.Cut(rest, ".")
	return k, nil
}

// IsWrite tells writes from reads.
func IsWrite(k RequestKey) bool {
	switch k.Verb {
	case "GET", "LIST", "WATCH":
		return false
	}
	return true
}

// jobResources are the objects a side's users create: ExtractionJobs or batch/v1 Jobs.
var jobResources = map[string]bool{"extractionjobs": true, "jobs": true}

// Breakdown splits a side's API requests the way the issue asks: Pod
// writes, job status writes, events, every other write, and reads.
type Breakdown struct {
	PodWrites    float64 `json:"podWrites"`
	StatusWrites float64 `json:"statusWrites"`
	Events       float64 `json:"events"`
	OtherWrites  float64 `json:"otherWrites"`
	Reads        float64 `json:"reads"`
}

// NonEventWrites are the writes the "at most 4 per attempt" target counts.
func (b Breakdown) NonEventWrites() float64 { return b.PodWrites + b.StatusWrites + b.OtherWrites }

// Per divides every figure by n.
func (b Breakdown) Per(n float64) Breakdown {
	if n == 0 {
		return Breakdown{}
	}
	return Breakdown{b.PodWrites / n, b.StatusWrites / n, b.Events / n, b.OtherWrites / n, b.Reads / n}
}

// BreakdownOf classifies counts. Background writes of the API server itself
// (leases, its own bookkeeping) are left out by the background filter,
// which keeps only the resources a job controller touches.
func BreakdownOf(c Counts) Breakdown {
	var b Breakdown
	for k, v := range c {
		switch {
		case !IsWrite(k):
			if controllerResource(k) {
				b.Reads += v
			}
		case k.Resource == "pods":
			b.PodWrites += v
		case jobResources[k.Resource] && k.Subresource == "status":
			b.StatusWrites += v
		case k.Resource == "events":
			b.Events += v
		case controllerResource(k):
			b.OtherWrites += v
		}
	}
	return b
}

// controllerResource reports whether a request concerns what a job
// controller reads and writes, as opposed to the API server's background
// work (leases of its identity, flow-control configuration).
func controllerResource(k RequestKey) bool {
	return k.Resource == "pods" || jobResources[k.Resource] || k.Resource == "events"
}

// Background returns the requests that are neither the side's nor the
// harness's, for the JSON, so a reader can see that they are small.
func Background(c Counts) Counts {
	out := Counts{}
	for k, v := range c {
		if !controllerResource(k) {
			out[k] = v
		}
	}
	return out
}
