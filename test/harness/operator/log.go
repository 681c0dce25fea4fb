package operator

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"strings"
)

// JobWorkersStarted is in the line the operator logs once the job
// controller's caches synced and its workers run (after it took the lease,
// with leader election): a marker (Options.Markers) for a test that must
// know when a restarted operator acts again.
const JobWorkersStarted = `"msg":"Starting workers","controller":"extractionjob"`

// LogLine is one JSON line of the operator's zap log.
type LogLine struct {
	Level     string `json:"level"`
	Msg       string `json:"msg"`
	Error     string `json:"error"`
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	// Raw is the line as written; lines that are not JSON (the harness's
	// markers, klog) have only this.
	Raw string `json:"-"`
}

// ReadLog parses a log from an offset.
func ReadLog(path string, offset int64) []LogLine {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return nil
	}
	var lines []LogLine
	scanner := bufio.NewScanner(f)
	scanner.Buffer(make([]byte, 1<<20), 1<<24)
	for scanner.Scan() {
		var l LogLine
		_ = json.Unmarshal(scanner.Bytes(), &l)
		l.Raw = scanner.Text()
		lines = append(lines, l)
	}
	return lines
}

// LogSize is a log's current length, an offset for ReadLog.
func LogSize(path string) int64 {
	info, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return info.Size()
}

// ReconcileErrors are the "Reconciler error" lines, by job (namespace/name).
func ReconcileErrors(lines []LogLine) map[string][]string {
	errs := map[string][]string{}
	for _, l := range lines {
		if l.Msg == "Reconciler error" {
			key := l.Namespace + "/" + l.Name
			errs[key] = append(errs[key], l.Error)
		}
	}
	return errs
}

// CountErrors is the number of errors in a ReconcileErrors map.
func CountErrors(errs map[string][]string) int {
	n := 0
	for _, e := range errs {
		n += len(e)
	}
	return n
}

// Excerpt is every line of a log that mentions one of the words, and every
// marker line, at most max (the first and last halves).
func Excerpt(path string, max int, words ...string) []string {
	var out []string
	for _, l := range ReadLog(path, 0) {
		if strings.HasPrefix(strings.TrimSpace(l.Raw), MarkerPrefix) {
			out = append(out, l.Raw)
			continue
		}
		for _, w := range words {
			if w != "" && strings.Contains(l.Raw, w) {
				out = append(out, l.Raw)
				break
			}
		}
	}
	if len(out) > max {
		out = append(out[:max/2], append([]string{"…"}, out[len(out)-max/2:]...)...)
	}
	return out
}
