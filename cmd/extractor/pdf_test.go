package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/utils/ptr"

	"github.com/pybase/extraction-operator/api/podcontract"
)

// wantFailure checks that err is a failure of the given type whose message
// says what is expected.
func wantFailure(t *testing.T, err error, wantType, wantMessage string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %s", wantType)
	}
	f := asFailure(err)
	if f.errorType != wantType || !strings.Contains(f.terminationMessage(), wantMessage) {
		t.Fatalf("got %q, want %s mentioning %q", f.terminationMessage(), wantType, wantMessage)
	}
}

// pieceSizes are the ways a file is cut into writes: whole, byte by byte
// (every boundary), and an odd size that splits markers.
var pieceSizes = []int{1 << 20, 1, 7}

// pdfinfoSummary is what poppler's pdfinfo said of a fixture, in the
// extractor's terms: make-fixtures.sh saved its output beside the fixture.
// pdfinfo cannot open a file with a user password without it and says
// "Incorrect password"; the extractor then reports only that it is encrypted.
func pdfinfoSummary(t *testing.T, path string) pdfSummary {
	t.Helper()
	out, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(out, []byte("Incorrect password")) {
		return pdfSummary{Encrypted: true}
	}
	var summary pdfSummary
	fields := map[string]string{}
	for scanner := bufio.NewScanner(bytes.NewReader(out)); scanner.Scan(); {
		if name, value, ok := strings.Cut(scanner.Text(), ":"); ok {
			fields[name] = strings.TrimSpace(value)
		}
	}
	pages, err := strconv.Atoi(fields["Pages"])
	if err != nil {
		t.Fatalf("%s: no page count: %v", path, err)
	}
	summary.Pages = &pages
	summary.Version = fields["PDF version"]
	summary.Encrypted = strings.HasPrefix(fields["Encrypted"], "yes")
	// pdfinfo calls a linearized file "optimized".
	summary.Linearized = fields["Optimized"] == "yes"
	return summary
}

func TestPDFInspectorAgreesWithPdfinfo(t *testing.T) {
	fixtures, err := filepath.Glob("testdata/pdf/*.pdf")
	if err != nil || len(fixtures) < 8 {
		t.Fatalf("want the 8 fixtures of testdata/pdf/make-fixtures.sh, found %d (%v)", len(fixtures), err)
	}
	for _, path := range fixtures {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		want := pdfinfoSummary(t, strings.TrimSuffix(path, ".pdf")+".pdfinfo.txt")
		// pdfinfo does not say whether a file uses object streams; their
		// dictionaries are not encrypted, so the bytes show it.
		want.ObjectStreams = bytes.Contains(data, []byte("/ObjStm"))
		for _, piece := range pieceSizes {
			t.Run(fmt.Sprintf("%s reads as pdfinfo reads it, in pieces of %d", filepath.Base(path), piece), func(t *testing.T) {
				got, err := inspectInPieces(newPDFInspector(t.Context()), data, piece)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("summary (-pdfinfo +extractor):\n%s", diff)
				}
			})
		}
	}
}

func TestPDFInspector(t *testing.T) {
	valid := minimalPDF(2)
	objectStreams := testdataFile(t, "pdf/qpdf-object-streams.pdf")
	// Zeros in the middle of the compressed object stream that holds the
	// pages: pdfinfo fails on this file too ("Bad block header in flate
	// stream").
	streamAt := bytes.Index(objectStreams, []byte("stream")) + len("stream\n")
	damagedStream := bytes.Clone(objectStreams)
	copy(damagedStream[streamAt+20:], make([]byte, 40))
	// A cross-reference table whose keyword is gone: pdfinfo rebuilds the
	// table by scanning the objects, and so does pdfcpu.
	brokenXref := bytes.Replace(testdataFile(t, "pdf/ghostscript-3-pages.pdf"), []byte("xref"), []byte("xre_"), 1)
	tests := []struct {
		name        string
		data        []byte
		want        pdfSummary
		wantType    string
		wantMessage string
	}{
		{name: "a valid PDF reports its version and its two pages", data: valid, want: pdfSummary{Version: "1.7", Pages: ptr.To(2)}},
		{name: "a single page PDF has one page", data: minimalPDF(1), want: pdfSummary{Version: "1.7", Pages: ptr.To(1)}},
		{
			name: "junk before the header is accepted, as PDF readers accept it",
			data: append([]byte(strings.Repeat("x", 500)), valid...),
			want: pdfSummary{Version: "1.7", Pages: ptr.To(2)},
		},
		{
			name: "a PDF with a broken cross-reference table is read as pdfinfo reads it, by rebuilding the table",
			data: brokenXref, want: pdfSummary{Version: "1.4", Pages: ptr.To(3)},
		},
		{
			name:     "a header after the first 1 KiB is InvalidFileType",
			data:     append([]byte(strings.Repeat("x", 2000)), valid...),
			wantType: podcontract.InvalidFileType, wantMessage: `no "%PDF-" header`,
		},
		{name: "an empty file is CorruptedFile", data: nil, wantType: podcontract.CorruptedFile, wantMessage: "empty"},
		{name: "a file cut inside the header is CorruptedFile", data: []byte("%PD"), wantType: podcontract.CorruptedFile, wantMessage: "ends inside its header"},
		{name: "a text file is InvalidFileType", data: []byte("hello, world\n"), wantType: podcontract.InvalidFileType, wantMessage: "text/plain"},
		{
			name:     "a PDF cut in the middle is CorruptedFile",
			data:     valid[:len(valid)/2],
			wantType: podcontract.CorruptedFile, wantMessage: "no %%EOF",
		},
		{
			name:     "a PDF with object streams cut in the middle is CorruptedFile",
			data:     objectStreams[:len(objectStreams)/2],
			wantType: podcontract.CorruptedFile, wantMessage: "no %%EOF",
		},
		{
			name:     "a PDF whose object stream is damaged is CorruptedFile",
			data:     damagedStream,
			wantType: podcontract.CorruptedFile, wantMessage: "the PDF is broken: pdfcpu could not read",
		},
		{
			name:     "a PDF without a document catalog is CorruptedFile",
			data:     []byte("%PDF-1.4\n1 0 obj <<>> endobj\n%%EOF\n"),
			wantType: podcontract.CorruptedFile, wantMessage: "the PDF is broken",
		},
		{
			name:     "a PDF of an unknown version is CorruptedFile",
			data:     bytes.Replace(valid, []byte("%PDF-1.7"), []byte("%PDF-9.9"), 1),
			wantType: podcontract.CorruptedFile, wantMessage: "the PDF is broken: pdfcpu could not read",
		},
	}
	for _, tt := range tests {
		for _, piece := range pieceSizes {
			t.Run(fmt.Sprintf("%s, in pieces of %d", tt.name, piece), func(t *testing.T) {
				got, err := inspectInPieces(newPDFInspector(t.Context()), tt.data, piece)
				if tt.wantType != "" {
					wantFailure(t, err, tt.wantType, tt.wantMessage)
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("summary (-want +got):\n%s", diff)
				}
			})
		}
	}
}

func TestPDFInspectorStopsEarly(t *testing.T) {
	t.Run("a file that is not a PDF is refused once its first 1 KiB is in, before the rest is read", func(t *testing.T) {
		p := newPDFInspector(t.Context())
		_, err := p.Write(bytes.Repeat([]byte{0}, pdfHeaderWindow))
		wantFailure(t, err, podcontract.InvalidFileType, "unrecognised binary data")
	})
}

func TestPDFInspectorScratchFile(t *testing.T) {
	t.Run("the scratch file never shows in TMPDIR and is closed when the PDF is read", func(t *testing.T) {
		dir := t.TempDir()
		t.Setenv("TMPDIR", dir)
		p := newPDFInspector(t.Context())
		data := minimalPDF(2)
		if _, err := p.Write(data); err != nil {
			t.Fatal(err)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Errorf("TMPDIR holds %v while the PDF is spooled", entries)
		}
		if _, err := p.finish(int64(len(data))); err != nil {
			t.Fatal(err)
		}
		if p.spool != nil {
			t.Error("the scratch file is still open after finish")
		}
	})
	t.Run("a scratch directory that cannot be written is IOError", func(t *testing.T) {
		t.Setenv("TMPDIR", filepath.Join(t.TempDir(), "missing"))
		_, err := newPDFInspector(t.Context()).Write(minimalPDF(1))
		wantFailure(t, err, podcontract.IOError, "creating a scratch file for the PDF")
	})
	t.Run("Close before finish releases the scratch file of a run that failed", func(t *testing.T) {
		p := newPDFInspector(t.Context())
		if _, err := p.Write([]byte("%PDF-1.7\n")); err != nil {
			t.Fatal(err)
		}
		spool := p.spool
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := spool.Stat(); err == nil {
			t.Error("the scratch file is still open after Close")
		}
	})
}

func TestPDFInspectorContext(t *testing.T) {
	t.Run("a PDF read after the run was interrupted is Interrupted, not CorruptedFile", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := inspectInPieces(newPDFInspector(ctx), testdataFile(t, "pdf/qpdf-merged-5-pages.pdf"), 1<<20)
		wantFailure(t, err, podcontract.Interrupted, "reading the PDF")
	})
}
