package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pybase/extraction-operator/api/podcontract"
)

// runWith runs the test extractor with env and returns its exit code, its
// termination log (or nil if it wrote none) and its stderr.
func runWith(t *testing.T, env map[string]string) (code int, terminationLog []byte, stderr string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "termination-log")
	var logs bytes.Buffer
	code = run(func(key string) string { return env[key] }, path, &logs)
	terminationLog, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return code, terminationLog, logs.String()
}

var job = map[string]string{
	podcontract.EnvFormat:    "pdf",
	podcontract.EnvSourceURL: "http://files.local/a.pdf",
	podcontract.EnvAttempt:   "2",
}

func withJob(extra map[string]string) map[string]string {
	env := map[string]string{}
	for _, vars := range []map[string]string{job, extra} {
		for key, value := range vars {
			env[key] = value
		}
	}
	return env
}

// result reads a success's termination log as the operator does.
func result(t *testing.T, terminationLog []byte) map[string]any {
	t.Helper()
	raw, err := podcontract.ParseResult(string(terminationLog))
	if err != nil || raw == nil {
		t.Fatalf("the termination log %q is no result the operator keeps: %v", terminationLog, err)
	}
	var got map[string]any
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	return got
}

func TestWithNoRequestItSucceedsWithTheJobAsItsResult(t *testing.T) {
	code, terminationLog, _ := runWith(t, job)
	if code != 0 {
		t.Fatalf("exit code %d, want 0", code)
	}
	want := map[string]any{"format": "pdf", "sourceURL": "http://files.local/a.pdf", "attempt": "2", "allocatedMiB": 0.0}
	if diff := cmp.Diff(want, result(t, terminationLog)); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
}

// peakRSSKiB is the process's peak resident memory so far (VmHWM).
func peakRSSKiB(t *testing.T) int {
	t.Helper()
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc/self/status to read the resident memory from: %v", err)
	}
	scanner := bufio.NewScanner(bytes.NewReader(status))
	for scanner.Scan() {
		if value, ok := strings.CutPrefix(scanner.Text(), "VmHWM:"); ok {
			kib, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(value), " kB"))
			if err != nil {
				t.Fatal(err)
			}
			return kib
		}
	}
	t.Fatal("no VmHWM in /proc/self/status")
	return 0
}

func TestAllocatingWritesTheMemorySoTheResidentSizeGrows(t *testing.T) {
	const mib = 64
	before := peakRSSKiB(t)
	code, terminationLog, _ := runWith(t, withJob(map[string]string{EnvAllocateMiB: strconv.Itoa(mib)}))
	grown := peakRSSKiB(t) - before
	if code != 0 {
		t.Fatalf("exit code %d, want 0", code)
	}
	if grown < mib*1024 {
		t.Errorf("the peak resident memory grew by %d KiB, want at least the %d MiB asked for", grown, mib)
	}
	if got := result(t, terminationLog)["allocatedMiB"]; got != float64(mib) {
		t.Errorf("allocatedMiB %v, want %d", got, mib)
	}
}

func TestACrashLogsItsLineAndLeavesTheTerminationLogEmpty(t *testing.T) {
	code, terminationLog, stderr := runWith(t, withJob(map[string]string{EnvCrash: "1"}))
	if code == 0 {
		t.Fatal("exit code 0, want a failure")
	}
	if terminationLog != nil {
		t.Errorf("the crash wrote the termination log %q; the kubelet would not fall back to the logs", terminationLog)
	}
	if !strings.Contains(stderr, CrashLine) {
		t.Errorf("stderr %q lacks %q", stderr, CrashLine)
	}
	// The kubelet's log tail becomes the message: it must not read as an
	// "ErrorType: message" line, so that the operator reads the exit code.
	if errorType, _, ok := podcontract.ParseFailure(stderr); ok {
		t.Errorf("the log reads as a failure of error type %q", errorType)
	}
	if _, known := podcontract.ErrorTypeOfExitCode(code); known {
		t.Errorf("exit code %d reads as a known error type; a crash should read as an unknown one", code)
	}
}

func TestALongMessageFailureWritesEveryByteAsked(t *testing.T) {
	code, terminationLog, _ := runWith(t, withJob(map[string]string{EnvFailMessageBytes: "10000"}))
	if want := podcontract.ExitCode(podcontract.CorruptedFile); code != want {
		t.Errorf("exit code %d, want %d", code, want)
	}
	if len(terminationLog) != 10000 {
		t.Errorf("the termination log has %d bytes, want 10000", len(terminationLog))
	}
	if !strings.HasSuffix(string(terminationLog), LongMessageEnd) {
		t.Errorf("the termination log does not end with %q", LongMessageEnd)
	}
	if errorType, _, ok := podcontract.ParseFailure(string(terminationLog)); !ok || errorType != podcontract.CorruptedFile {
		t.Errorf("the termination log reads as %q (%v), want a %s failure", errorType, ok, podcontract.CorruptedFile)
	}
}

func TestARequestThatDoesNotParseIsAUsageError(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
	}{
		{"memory that is not a number", map[string]string{EnvAllocateMiB: "lots"}},
		{"negative memory", map[string]string{EnvAllocateMiB: "-1"}},
		{"a crash that is not 1", map[string]string{EnvCrash: "yes"}},
		{"a message size that is not a number", map[string]string{EnvFailMessageBytes: "long"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, terminationLog, _ := runWith(t, withJob(tt.env))
			errorType, _, ok := podcontract.ParseFailure(string(terminationLog))
			if !ok || errorType != podcontract.UsageError {
				t.Errorf("termination log %q, want a %s failure", terminationLog, podcontract.UsageError)
			}
			if want := podcontract.ExitCode(podcontract.UsageError); code != want {
				t.Errorf("exit code %d, want %d", code, want)
			}
		})
	}
}
