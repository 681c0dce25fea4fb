package main

import (
	"io"
	"testing"
	"time"

	"github.com/pybase/extraction-operator/api/podcontract"
)

func TestParseByteSize(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{in: "1048576", want: 1 << 20},
		{in: "512Ki", want: 512 << 10},
		{in: "256Mi", want: 256 << 20},
		{in: " 2Gi ", want: 2 << 30},
		{in: "1Ti", want: 1 << 40},
		{in: "0", wantErr: true},
		{in: "-5", wantErr: true},
		{in: "1.5Gi", wantErr: true},
		{in: "10MB", wantErr: true},
		{in: "", wantErr: true},
		{in: "99999999999Ti", wantErr: true},
	}
	for _, tt := range tests {
		name := tt.in + " is " + map[bool]string{true: "refused", false: "accepted"}[tt.wantErr]
		t.Run(name, func(t *testing.T) {
			got, err := parseByteSize(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("got %d, %v", got, err)
			}
		})
	}
}

func TestParseConfig(t *testing.T) {
	base := map[string]string{
		"EXTRACTION_FORMAT":     "pdf",
		"EXTRACTION_SOURCE_URL": "https://example.com/a.pdf",
		"EXTRACTION_ATTEMPT":    "2",
	}
	env := func(overrides map[string]string) func(string) string {
		return func(name string) string {
			if v, ok := overrides[name]; ok {
				return v
			}
			return base[name]
		}
	}
	t.Run("defaults apply without flags or options", func(t *testing.T) {
		cfg, err := parseConfig(nil, env(nil), io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.maxBytes != defaultMaxBytes || cfg.timeout != defaultTimeout || cfg.terminationLog != defaultTerminationLog || cfg.attempt != "2" {
			t.Errorf("got %+v", cfg)
		}
	})
	t.Run("options win over flags, because the operator passes no flags", func(t *testing.T) {
		cfg, err := parseConfig([]string{"--max-bytes=1Ki", "--timeout=1m"},
			env(map[string]string{"EXTRACTION_OPTIONS": `{"maxBytes":"2Mi","timeout":"90s","other":"ignored"}`}), io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.maxBytes != 2<<20 || cfg.timeout != 90*time.Second {
			t.Errorf("got %+v", cfg)
		}
	})
	t.Run("the termination log can be moved by flag or environment", func(t *testing.T) {
		cfg, _ := parseConfig(nil, env(map[string]string{"EXTRACTION_TERMINATION_LOG": "/tmp/from-env"}), io.Discard)
		flagged, _ := parseConfig([]string{"--termination-log=-"}, env(map[string]string{"EXTRACTION_TERMINATION_LOG": "/tmp/from-env"}), io.Discard)
		if cfg.terminationLog != "/tmp/from-env" || flagged.terminationLog != "-" {
			t.Errorf("got %q and %q", cfg.terminationLog, flagged.terminationLog)
		}
	})
	usageErrors := []struct {
		name string
		args []string
		env  map[string]string
	}{
		{name: "an unknown flag is a UsageError", args: []string{"--colour"}},
		{name: "a stray argument is a UsageError", args: []string{"a.pdf"}},
		{name: "a bad --max-bytes is a UsageError", args: []string{"--max-bytes=lots"}},
		{name: "a missing format is a UsageError", env: map[string]string{"EXTRACTION_FORMAT": ""}},
		{name: "options that are not JSON are a UsageError", env: map[string]string{"EXTRACTION_OPTIONS": "maxBytes=1"}},
		{name: "a timeout that is not a duration is a UsageError", env: map[string]string{"EXTRACTION_OPTIONS": `{"timeout":"1d"}`}},
		{name: "a timeout that is not positive is a UsageError", env: map[string]string{"EXTRACTION_OPTIONS": `{"timeout":"-1s"}`}},
	}
	for _, tt := range usageErrors {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseConfig(tt.args, env(tt.env), io.Discard)
			wantFailure(t, err, podcontract.UsageError, "")
		})
	}
}
