package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// wantFailure checks that err is a failure of the given type whose message
// says what is expected.
func wantFailure(t *testing.T, err error, wantType, wantMessage string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %s", wantType)
	}
	f := asFailure(err)
	if f.errorType != wantType || !strings.Contains(f.terminationLine(), wantMessage) {
		t.Fatalf("got %q, want %s mentioning %q", f.terminationLine(), wantType, wantMessage)
	}
}

// pieceSizes are the ways a file is cut into writes: whole, byte by byte
// (every boundary), and an odd size that splits markers.
var pieceSizes = []int{1 << 20, 1, 7}

func TestPDFInspector(t *testing.T) {
	valid := minimalPDF(2)
	withTrailer := func(body string) []byte {
		return []byte(fmt.Sprintf("%%PDF-1.4\n%s\nstartxref\n9\n%%%%EOF\n", body))
	}
	tests := []struct {
		name        string
		data        []byte
		want        pdfSummary
		wantType    string
		wantMessage string
	}{
		{name: "a valid PDF reports its version and its two pages", data: valid, want: pdfSummary{Version: "1.7", Pages: 2}},
		{name: "a single page PDF has one page", data: minimalPDF(1), want: pdfSummary{Version: "1.7", Pages: 1}},
		{
			name: "page objects count however their names are spaced, page tree nodes do not",
			data: withTrailer("<</Type/Page>> <</Type /Page/Parent 2 0 R>> <</Type\r\n/Page\n>> <</Type /Pages>> <</Type /PageLabel>>"),
			want: pdfSummary{Version: "1.4", Pages: 3},
		},
		{
			name: "a page object at the very end of the data still counts",
			data: append(withTrailer(""), "<</Type /Page"...),
			want: pdfSummary{Version: "1.4", Pages: 1},
		},
		{
			name: "an encrypted PDF with object streams says so",
			data: withTrailer("<</Type /ObjStm /N 3>> trailer <</Encrypt 5 0 R>>"),
			want: pdfSummary{Version: "1.4", Encrypted: true, ObjectStreams: true},
		},
		{
			name: "junk before the header is accepted, as PDF readers accept it",
			data: append([]byte(strings.Repeat("x", 500)), valid...),
			want: pdfSummary{Version: "1.7", Pages: 2},
		},
		{
			name:     "a header after the first 1 KiB is InvalidFileType",
			data:     append([]byte(strings.Repeat("x", 2000)), valid...),
			wantType: typeInvalidFileType, wantMessage: `no "%PDF-" header`,
		},
		{name: "an empty file is CorruptedFile", data: nil, wantType: typeCorruptedFile, wantMessage: "empty"},
		{name: "a file cut inside the header is CorruptedFile", data: []byte("%PD"), wantType: typeCorruptedFile, wantMessage: "ends inside its header"},
		{name: "a text file is InvalidFileType", data: []byte("hello, world\n"), wantType: typeInvalidFileType, wantMessage: "text/plain"},
		{
			name:     "a PDF cut in the middle is CorruptedFile",
			data:     valid[:len(valid)/2],
			wantType: typeCorruptedFile, wantMessage: "no %%EOF",
		},
		{
			name:     "a PDF without startxref is CorruptedFile",
			data:     []byte("%PDF-1.4\n1 0 obj <<>> endobj\n%%EOF\n"),
			wantType: typeCorruptedFile, wantMessage: "no startxref",
		},
		{
			name:     "a startxref past the end of the file is CorruptedFile",
			data:     []byte("%PDF-1.4\nstartxref\n999999\n%%EOF\n"),
			wantType: typeCorruptedFile, wantMessage: "points to byte 999999",
		},
	}
	for _, tt := range tests {
		for _, piece := range pieceSizes {
			t.Run(fmt.Sprintf("%s, in pieces of %d", tt.name, piece), func(t *testing.T) {
				got, err := inspectInPieces(newPDFInspector(), tt.data, piece)
				if tt.wantType != "" {
					wantFailure(t, err, tt.wantType, tt.wantMessage)
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if got != tt.want {
					t.Errorf("got %+v, want %+v", got, tt.want)
				}
			})
		}
	}
}

func TestPDFInspectorStopsEarly(t *testing.T) {
	t.Run("a file that is not a PDF is refused once its first 1 KiB is in, before the rest is read", func(t *testing.T) {
		p := newPDFInspector()
		_, err := p.Write(bytes.Repeat([]byte{0}, pdfHeaderWindow))
		wantFailure(t, err, typeInvalidFileType, "unrecognised binary data")
	})
}
