package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/pybase/extraction-operator/api/podcontract"
)

const (
	defaultTerminationLog = podcontract.TerminationLogPath
	defaultMaxBytes       = 256 << 20
	defaultTimeout        = 15 * time.Minute
)

// Option keys this extractor reads from EXTRACTION_OPTIONS. Other keys are
// ignored, so one job spec can carry options for several extractors.
const (
	optionMaxBytes = "maxBytes"
	optionTimeout  = "timeout"
)

// config is everything one run needs, read from flags and the environment.
type config struct {
	terminationLog string
	format         string
	sourceURL      string
	attempt        string
	maxBytes       int64
	timeout        time.Duration
	// allowed are the internal destinations the class's administrator
	// allows (podcontract.EnvAllowedDestinations).
	allowed destinations
	// env looks up credentials; a function so tests need not touch the
	// process environment.
	env func(string) string
}

// parseConfig reads flags and the Pod contract's environment. Options in the
// job spec win over flags, because the operator never passes flags: flags are
// for people running the extractor by hand and for tests.
func parseConfig(args []string, env func(string) string, stderr io.Writer) (config, error) {
	cfg := config{env: env}
	terminationLog := env("EXTRACTION_TERMINATION_LOG")
	if terminationLog == "" {
		terminationLog = defaultTerminationLog
	}

	flags := flag.NewFlagSet("extractor", flag.ContinueOnError)
	flags.SetOutput(stderr)
	flags.StringVar(&cfg.terminationLog, "termination-log", terminationLog,
		`Where to write the termination message; "-" writes it to stdout. Env EXTRACTION_TERMINATION_LOG.`)
	maxBytes := flags.String("max-bytes", strconv.Itoa(defaultMaxBytes),
		"Largest source accepted, in bytes or with a Ki/Mi/Gi suffix; the option maxBytes wins.")
	flags.DurationVar(&cfg.timeout, "timeout", defaultTimeout, "Time allowed for fetching and checking the source; the option timeout wins.")
	if err := flags.Parse(args); err != nil {
		return cfg, fail(podcontract.UsageError, err, "parsing flags: %v", err)
	}
	if flags.NArg() > 0 {
		return cfg, fail(podcontract.UsageError, nil, "unexpected arguments %q", flags.Args())
	}
	var err error
	if cfg.maxBytes, err = parseByteSize(*maxBytes); err != nil {
		return cfg, fail(podcontract.UsageError, err, "flag --max-bytes: %v", err)
	}

	cfg.format = env(podcontract.EnvFormat)
	cfg.sourceURL = env(podcontract.EnvSourceURL)
	cfg.attempt = env(podcontract.EnvAttempt)
	if cfg.format == "" {
		return cfg, fail(podcontract.UsageError, nil, "%s is not set", podcontract.EnvFormat)
	}
	if cfg.sourceURL == "" {
		return cfg, fail(podcontract.UsageError, nil, "%s is not set", podcontract.EnvSourceURL)
	}
	if cfg.allowed, err = parseDestinations(env(podcontract.EnvAllowedDestinations)); err != nil {
		return cfg, fail(podcontract.UsageError, err, "%s: %v", podcontract.EnvAllowedDestinations, err)
	}
	options, err := parseOptions(env(podcontract.EnvOptions))
	if err != nil {
		return cfg, err
	}
	if err := cfg.applyOptions(options); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// parseOptions reads EXTRACTION_OPTIONS, a JSON object of strings; unset is
// no options.
func parseOptions(raw string) (map[string]string, error) {
	if strings.TrimSpace(raw) == "" {
		return nil, nil
	}
	var options map[string]string
	if err := json.Unmarshal([]byte(raw), &options); err != nil {
		return nil, fail(podcontract.UsageError, err, "%s is not a JSON object of strings: %v", podcontract.EnvOptions, err)
	}
	return options, nil
}

func (cfg *config) applyOptions(options map[string]string) error {
	if v, ok := options[optionMaxBytes]; ok {
		n, err := parseByteSize(v)
		if err != nil {
			return fail(podcontract.UsageError, err, "option %s: %v", optionMaxBytes, err)
		}
		cfg.maxBytes = n
	}
	if v, ok := options[optionTimeout]; ok {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fail(podcontract.UsageError, err, "option %s: %v", optionTimeout, err)
		}
		if d <= 0 {
			return fail(podcontract.UsageError, nil, "option %s must be positive, not %s", optionTimeout, v)
		}
		cfg.timeout = d
	}
	return nil
}

// byteSuffixes are the binary suffixes Kubernetes quantities use, so a job
// author can write maxBytes the way they write memory limits.
var byteSuffixes = []struct {
	suffix string
	shift  uint
}{{"Ki", 10}, {"Mi", 20}, {"Gi", 30}, {"Ti", 40}}

// parseByteSize reads a positive size such as "1048576", "512Ki" or "1Gi".
func parseByteSize(s string) (int64, error) {
	number, shift := strings.TrimSpace(s), uint(0)
	for _, b := range byteSuffixes {
		if n, ok := strings.CutSuffix(number, b.suffix); ok {
			number, shift = n, b.shift
			break
		}
	}
	n, err := strconv.ParseInt(number, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q is not a positive number of bytes (such as 1048576 or 256Mi)", s)
	}
	if n > (1<<62)>>shift {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return n << shift, nil
}
