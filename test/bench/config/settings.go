// Package config holds the benchmark's settings: its flags, each also
// settable through an environment variable, and the environment the operator
// ships with.
package config

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Settings are the harness's knobs. Every flag can also be set through the
// environment variable named in its help, so `make bench` takes them too.
type Settings struct {
	Root       string // the repository
	AssetsDir  string // kube-apiserver and etcd for envtest
	KubeBinDir string // kube-controller-manager
	WorkDir    string // logs and the operator binary of this run
	OutDir     string // bench.json and bench.png

	Scenarios []string
	Sides     []string
	// ScaleSides are the sides of scenario 3, which takes longest: filling
	// 10,000 jobs costs the Job controller as long again as the operator.
	ScaleSides []string

	ThroughputN  int
	RetryN       int
	ScaleN       int
	Rates        []float64
	RateDuration time.Duration

	// Equal is the pair of limits both controllers get for the comparison
	// at equal limits; Off lifts the client-side rate limits.
	Equal, Off Limits
	// ThroughputLimits are the limits scenario 1 runs under; the other
	// scenarios run under OtherLimits.
	ThroughputLimits []Limits
	OtherLimits      Limits

	// QueueN are the sizes scenario 5 runs at behind QueueMaxRunning, and
	// QueueUncappedN those it runs at without a cap, for the comparison.
	QueueN, QueueUncappedN []int
	QueueMaxRunning        int
	// QueueRunTime is how long each attempt of scenario 5 runs, in whole
	// seconds (the simulation plan's run-seconds): long enough that the cap,
	// not the operator's pace, bounds the attempts in flight.
	QueueRunTime time.Duration

	// OutageN jobs run in scenario 6, against a backend down for OutageWindow.
	OutageN      int
	OutageWindow time.Duration

	// RestartAt is how long after the first create scenario 2's variant
	// kills the operator, and RestartDown how long it stays down.
	RestartAt, RestartDown time.Duration

	PodRunTime time.Duration
	Timeout    time.Duration
	// APIServerProfile, when positive, takes a CPU profile of kube-apiserver
	// for that long at the start of every scenario-1 run.
	APIServerProfile time.Duration
	// OperatorEnv is the operator process's environment: the literal
	// environment of its container in config/manager/manager.yaml, then
	// the -operator-env flag's, to try other settings.
	OperatorEnv []string
	// Replot, when set, is a bench.json to draw bench.png and bench.md from
	// again, next to it, instead of running anything.
	Replot string `json:"-"`
}

// Limits are the client-side settings a side runs with. Both controllers
// get the same: QPS and burst per client, and concurrency as
// MaxConcurrentReconciles against --concurrent-job-syncs.
type Limits struct {
	Name        string  `json:"name"`
	QPS         float64 `json:"qps"` // negative: no client-side rate limit
	Burst       int     `json:"burst"`
	Concurrency int     `json:"concurrency"`
}

func (l Limits) String() string {
	if l.QPS < 0 {
		return fmt.Sprintf("%s (no rate limit, %d workers)", l.Name, l.Concurrency)
	}
	return fmt.Sprintf("%s (QPS %g, burst %d, %d workers)", l.Name, l.QPS, l.Burst, l.Concurrency)
}

// Parse reads the settings from the command line and the environment.
func Parse(args []string) (*Settings, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	s := &Settings{}
	root, _ := os.Getwd()
	str := func(p *string, name, env, def, help string) {
		fs.StringVar(p, name, envOr(env, def), help+" ($"+env+")")
	}
	integer := func(p *int, name, env string, def int, help string) {
		d, err := strconv.Atoi(envOr(env, strconv.Itoa(def)))
		if err != nil {
			d = def
		}
		fs.IntVar(p, name, d, help+" ($"+env+")")
	}
	duration := func(p *time.Duration, name, env string, def time.Duration, help string) {
		d, err := time.ParseDuration(envOr(env, def.String()))
		if err != nil {
			d = def
		}
		fs.DurationVar(p, name, d, help+" ($"+env+")")
	}
	var scenarios, sides, scaleSides, rates, tpLimits, otherLimits, kubeVersion, queueN, queueUncappedN string
	str(&s.Root, "root", "BENCH_ROOT", root, "repository root")
	str(&kubeVersion, "kube-version", "KUBE_VERSION", "v1.37.2", "control-plane version in bin/")
	str(&s.WorkDir, "work-dir", "BENCH_WORK_DIR", "", "logs and the operator binary (default ROOT/bin/bench)")
	str(&s.OutDir, "out", "BENCH_OUT", "", "where bench.json and bench.png go (default ROOT/test/bench/results)")
	str(&scenarios, "scenarios", "BENCH_SCENARIOS", "throughput,retry,retry-restart,scale,latency", "scenarios to run: throughput, retry, retry-restart, scale, latency, queue, outage")
	str(&sides, "sides", "BENCH_SIDES", "operator,job-controller,api-ceiling", "sides to run (the ceiling runs in scenarios 1 and 4 only)")
	str(&scaleSides, "scale-sides", "BENCH_SCALE_SIDES", "operator", "sides of scenario 3: operator and/or job-controller")
	integer(&s.ThroughputN, "throughput-n", "BENCH_THROUGHPUT_N", 2000, "jobs in scenario 1")
	integer(&s.RetryN, "retry-n", "BENCH_RETRY_N", 1000, "jobs in scenario 2")
	duration(&s.RestartAt, "restart-at", "BENCH_RESTART_AT", 20*time.Second, "when retry-restart kills the operator, after the first create")
	duration(&s.RestartDown, "restart-down", "BENCH_RESTART_DOWN", 5*time.Second, "how long retry-restart leaves the operator down")
	integer(&s.ScaleN, "scale-n", "BENCH_SCALE_N", 10000, "finished jobs in scenario 3")
	str(&queueN, "queue-n", "BENCH_QUEUE_N", "10000,1000", "jobs in scenario 5, behind maxRunning; one run per size")
	str(&queueUncappedN, "queue-uncapped-n", "BENCH_QUEUE_UNCAPPED_N", "1000", "jobs in scenario 5's comparison runs without maxRunning; one run per size")
	integer(&s.QueueMaxRunning, "queue-max-running", "BENCH_QUEUE_MAX_RUNNING", 50, "maxRunning of scenario 5's class")
	duration(&s.QueueRunTime, "queue-run-time", "BENCH_QUEUE_RUN_TIME", 3*time.Second, "how long each attempt of scenario 5 runs, whole seconds")
	integer(&s.OutageN, "outage-n", "BENCH_OUTAGE_N", 500, "jobs in scenario 6")
	duration(&s.OutageWindow, "outage-window", "BENCH_OUTAGE_WINDOW", time.Minute, "how long scenario 6's backend answers ServiceUnavailable")
	str(&rates, "rates", "BENCH_RATES", "20,50", "arrival rates of scenario 4, jobs/s")
	duration(&s.RateDuration, "rate-duration", "BENCH_RATE_DURATION", 15*time.Second, "how long each arrival rate lasts")
	equal := Limits{Name: "equal"}
	var equalQPS float64
	str(&tpLimits, "throughput-limits", "BENCH_THROUGHPUT_LIMITS", "equal,off", "limits for scenario 1: equal and/or off")
	str(&otherLimits, "limits", "BENCH_LIMITS", "off", "limits for scenarios 2-4: equal or off")
	fs.Float64Var(&equalQPS, "qps", envFloat("BENCH_QPS", 50), "QPS per client of both controllers at equal limits ($BENCH_QPS)")
	integer(&equal.Burst, "burst", "BENCH_BURST", 100, "burst per client of both controllers at equal limits")
	integer(&equal.Concurrency, "concurrency", "BENCH_CONCURRENCY", 5, "MaxConcurrentReconciles = --concurrent-job-syncs, under both limits")
	duration(&s.PodRunTime, "pod-run-time", "BENCH_POD_RUN_TIME", 200*time.Millisecond, "time the fake kubelet keeps a Pod Running")
	duration(&s.Timeout, "timeout", "BENCH_TIMEOUT", 30*time.Minute, "longest wait for one run's jobs to finish")
	duration(&s.APIServerProfile, "apiserver-profile", "BENCH_APISERVER_PROFILE", 0, "CPU-profile kube-apiserver this long in scenario 1 (0: off)")
	fs.StringVar(&s.Replot, "replot", "", "redraw bench.png and bench.md from this bench.json, next to it, and run nothing")
	var operatorEnv string
	str(&operatorEnv, "operator-env", "BENCH_OPERATOR_ENV", "", "comma-separated NAME=VALUE pairs for the operator process")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	equal.QPS = equalQPS
	s.Equal = equal
	s.Off = Limits{Name: "off", QPS: -1, Concurrency: equal.Concurrency}

	s.AssetsDir = filepath.Join(s.Root, "bin", "envtest-"+kubeVersion)
	s.KubeBinDir = filepath.Join(s.Root, "bin", "kube-"+kubeVersion)
	if s.WorkDir == "" {
		s.WorkDir = filepath.Join(s.Root, "bin", "bench")
	}
	if s.OutDir == "" {
		s.OutDir = filepath.Join(s.Root, "test", "bench", "results")
	}
	deployed, err := DeployedEnv(s.Root)
	if err != nil {
		return nil, err
	}
	// The flag's values come last, and the last of a duplicated name wins.
	s.OperatorEnv = append(deployed, splitList(operatorEnv)...)
	s.Scenarios, s.Sides, s.ScaleSides = splitList(scenarios), splitList(sides), splitList(scaleSides)
	for _, sc := range s.Scenarios {
		switch sc {
		case "throughput", "retry", "retry-restart", "scale", "latency", "queue", "outage":
		default:
			return nil, fmt.Errorf("unknown scenario %q", sc)
		}
	}
	for _, side := range s.Sides {
		switch side {
		case "operator", "job-controller", "api-ceiling":
		default:
			return nil, fmt.Errorf("unknown side %q", side)
		}
	}
	for _, side := range s.ScaleSides {
		if side != "operator" && side != "job-controller" {
			return nil, fmt.Errorf("unknown side %q for scenario 3", side)
		}
	}
	for _, r := range splitList(rates) {
		v, err := strconv.ParseFloat(r, 64)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("bad rate %q", r)
		}
		s.Rates = append(s.Rates, v)
	}
	if s.QueueN, err = sizes(queueN); err != nil {
		return nil, err
	}
	if s.QueueUncappedN, err = sizes(queueUncappedN); err != nil {
		return nil, err
	}
	if s.OutageN < 1 || s.OutageWindow <= 0 {
		return nil, fmt.Errorf("bad -outage-n %d or -outage-window %s: want at least 1 job and a window", s.OutageN, s.OutageWindow)
	}
	if s.QueueMaxRunning < 1 {
		return nil, fmt.Errorf("bad -queue-max-running %d: want at least 1", s.QueueMaxRunning)
	}
	if s.QueueRunTime < time.Second || s.QueueRunTime%time.Second != 0 {
		return nil, fmt.Errorf("bad -queue-run-time %s: want whole seconds", s.QueueRunTime)
	}
	for _, name := range splitList(tpLimits) {
		l, err := s.limits(name)
		if err != nil {
			return nil, err
		}
		s.ThroughputLimits = append(s.ThroughputLimits, l)
	}
	if s.OtherLimits, err = s.limits(otherLimits); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Settings) limits(name string) (Limits, error) {
	switch name {
	case "equal":
		return s.Equal, nil
	case "off":
		return s.Off, nil
	}
	return Limits{}, fmt.Errorf("unknown limits %q: want equal or off", name)
}

// Runs tells whether a scenario is to run.
func (s *Settings) Runs(scenario string) bool {
	for _, sc := range s.Scenarios {
		if sc == scenario {
			return true
		}
	}
	return false
}

// sizes reads a list of job counts.
func sizes(list string) ([]int, error) {
	var out []int
	for _, v := range splitList(list) {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("bad number of jobs %q", v)
		}
		out = append(out, n)
	}
	return out, nil
}

func envOr(name, def string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return def
}

func envFloat(name string, def float64) float64 {
	v, err := strconv.ParseFloat(envOr(name, ""), 64)
	if err != nil {
		return def
	}
	return v
}

func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}
