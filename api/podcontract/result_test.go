package podcontract

import (
	"strings"
	"testing"
)

func TestParseResult(t *testing.T) {
	cases := []struct {
		name    string
		raw     string
		want    string
		wantErr bool
	}{
		{"an empty message is no result", "  \n", "", false},
		{"an object is kept, compacted", "{ \"pages\": 12,\n \"sha256\": \"ab\" }\n", `{"pages":12,"sha256":"ab"}`, false},
		{"an array is not a result", "[1,2]", "", true},
		{"a string is not a result", `"done"`, "", true},
		{"null is not a result", "null", "", true},
		{"broken JSON is not a result", `{"pages":`, "", true},
		{"invalid UTF-8 is not a result", "{\"a\":\"\xff\"}", "", true},
		{"more than 4 KiB is not a result", `{"a":"` + strings.Repeat("x", 4096) + `"}`, "", true},
		{"deep nesting is not a result", strings.Repeat(`{"a":`, 40) + "1" + strings.Repeat("}", 40), "", true},
		{"32 levels of nesting are a result", strings.Repeat(`{"a":`, 32) + "1" + strings.Repeat("}", 32), strings.Repeat(`{"a":`, 32) + "1" + strings.Repeat("}", 32), false},
		{"brackets inside strings do not count as nesting", `{"a":"` + strings.Repeat("[", 100) + `"}`, `{"a":"` + strings.Repeat("[", 100) + `"}`, false},
		{"escaped quotes inside strings do not end them", `{"a":"\"[[[[","b":[]}`, `{"a":"\"[[[[","b":[]}`, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseResult(tc.raw)
			if (err != nil) != tc.wantErr {
				t.Fatalf("ParseResult error = %v, wantErr %v", err, tc.wantErr)
			}
			if string(got) != tc.want {
				t.Errorf("ParseResult = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestMarshalResult(t *testing.T) {
	cases := []struct {
		name    string
		value   any
		want    string
		wantErr string
	}{
		{"a struct becomes a compact object", struct {
			Format string `json:"format"`
			Pages  int    `json:"pages"`
		}{"pdf", 12}, `{"format":"pdf","pages":12}`, ""},
		{"names are not HTML-escaped", map[string]string{"schema": "A<B>&C"}, `{"schema":"A<B>&C"}`, ""},
		{"a value that is not an object is refused", []int{1, 2}, "", "not a JSON object"},
		{"nil is refused", nil, "", "not a JSON object"},
		{"more than 4 KiB is refused", map[string]string{"a": strings.Repeat("x", 5000)}, "", "more than the 4096 allowed"},
		{"a value JSON cannot encode is refused", map[string]any{"f": func() {}}, "", "encoding the result"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := MarshalResult(tc.value)
			if string(got) != tc.want {
				t.Errorf("MarshalResult = %s, want %s", got, tc.want)
			}
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("MarshalResult error = %v, want one saying %q", err, tc.wantErr)
			}
		})
	}
}
