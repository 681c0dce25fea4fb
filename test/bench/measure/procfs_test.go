package measure

import (
	"strings"
	"testing"
)

func TestParseStat(t *testing.T) {
	// A command name with spaces and parentheses must not shift the fields.
	line := "4242 (kube (api) server) S 17 4242 4242 0 -1 4194560 900 0 0 0 1234 567 0 0 20 0 12 0 100 0 0"
	st, err := parseStat(line)
	if err != nil {
		t.Fatal(err)
	}
	if st.comm != "kube (api) server" || st.ppid != 17 || st.utime != 1234 || st.stime != 567 {
		t.Errorf("got %+v", st)
	}
	if _, err := parseStat("garbage"); err == nil {
		t.Error("want an error for a malformed line")
	}
}

func TestParseStatusMemory(t *testing.T) {
	status := "Name:\tmanager\nVmPeak:\t  900000 kB\nVmHWM:\t   81920 kB\nVmRSS:\t   40960 kB\nThreads:\t12\n"
	m, err := parseStatusMemory(strings.NewReader(status))
	if err != nil {
		t.Fatal(err)
	}
	if m.RSS != 40960*1024 || m.PeakRSS != 81920*1024 {
		t.Errorf("got %+v", m)
	}
}
