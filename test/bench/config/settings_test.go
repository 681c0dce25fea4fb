package config

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestReplotNamesTheBenchJSONToDrawAgainAndStaysOutOfTheResults(t *testing.T) {
	s, err := Parse([]string{"-root=../../..", "-replot", "results/bench.json"})
	if err != nil {
		t.Fatal(err)
	}
	if s.Replot != "results/bench.json" {
		t.Errorf("Replot is %q, want results/bench.json", s.Replot)
	}
	raw, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), "results/bench.json") {
		t.Errorf("the settings written to bench.json name the file to replot: %s", raw)
	}
}

func TestTheQueueScenarioRunsAtEverySizeGivenAndInWholeSecondsOnly(t *testing.T) {
	s, err := Parse([]string{"-root=../../..", "-scenarios=queue", "-queue-n=10000, 1000", "-queue-uncapped-n=10000"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]int{10000, 1000}, s.QueueN); diff != "" || !s.Runs("queue") || s.QueueMaxRunning != 50 {
		t.Errorf("queue sizes (-want +got):\n%s runs queue %t, maxRunning %d", diff, s.Runs("queue"), s.QueueMaxRunning)
	}
	for _, bad := range [][]string{{"-queue-run-time=1500ms"}, {"-queue-n=0"}, {"-queue-max-running=0"}} {
		if _, err := Parse(append([]string{"-root=../../.."}, bad...)); err == nil {
			t.Errorf("Parse(%q) took it", bad)
		}
	}
}

func TestTheOutageScenarioRunsItsJobsAgainstAWindowOfOutage(t *testing.T) {
	s, err := Parse([]string{"-root=../../..", "-scenarios=outage"})
	if err != nil {
		t.Fatal(err)
	}
	if !s.Runs("outage") || s.OutageN != 500 || s.OutageWindow != time.Minute {
		t.Errorf("runs outage %t, %d jobs, window %s; want true, 500, 1m0s", s.Runs("outage"), s.OutageN, s.OutageWindow)
	}
	for _, bad := range [][]string{{"-outage-n=0"}, {"-outage-window=0s"}} {
		if _, err := Parse(append([]string{"-root=../../.."}, bad...)); err == nil {
			t.Errorf("Parse(%q) took it", bad)
		}
	}
}
