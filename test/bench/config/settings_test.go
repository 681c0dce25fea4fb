package config

import (
	"encoding/json"
	"strings"
	"testing"
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
