package controllers

import (
	"bytes"
	"strings"
	"testing"

	"github.com/pybase/extraction-operator/api/podcontract"
)

func TestParseResultKeepsWhatThePodContractKeeps(t *testing.T) {
	for name, raw := range map[string]string{
		"an empty message":     "  \n",
		"an object":            "{ \"pages\": 12,\n \"sha256\": \"ab\" }\n",
		"an array":             "[1,2]",
		"more than 4 KiB":      `{"a":"` + strings.Repeat("x", 4096) + `"}`,
		"broken JSON":          `{"pages":`,
		"invalid UTF-8 inside": "{\"a\":\"\xff\"}",
	} {
		t.Run(name, func(t *testing.T) {
			want, wantErr := podcontract.ParseResult(raw)
			got, err := parseResult(raw)
			if (err != nil) != (wantErr != nil) || (got == nil) != (want == nil) || got != nil && !bytes.Equal(got.Raw, want) {
				t.Errorf("parseResult(%q) = (%v, %v), want (%s, %v)", raw, got, err, want, wantErr)
			}
		})
	}
}

func TestCleanTextBoundsWhatGoesIntoStatus(t *testing.T) {
	got := cleanText("pods \"x\" is forbidden:\n" + strings.Repeat("é", 1000))
	if len(got) > podcontract.MaxMessageBytes || !strings.HasPrefix(got, `pods "x" is forbidden: é`) || !strings.HasSuffix(got, "…") {
		t.Errorf("cleanText = %q (%d bytes)", got, len(got))
	}
}
