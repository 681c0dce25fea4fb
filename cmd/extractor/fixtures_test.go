package main

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The tests make the files they use here, except those of testdata: PDFs
// that Ghostscript and qpdf made, with what poppler's pdfinfo read of them
// (pdf/make-fixtures.sh), and one drawing that ezdxf saved as ASCII and as
// binary DXF (dxf/make-fixtures.py), so that the readers are checked against
// what real tools write.

// testdataFile reads a fixture of testdata, named by its path there.
func testdataFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", path))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// minimalPDF is a valid PDF with the given number of pages: a catalog, a
// page tree, the pages, and an xref table with real offsets.
func minimalPDF(pages int) []byte {
	var b bytes.Buffer
	b.WriteString("%PDF-1.7\n%\xE2\xE3\xCF\xD3\n")
	var offsets []int
	object := func(body string) {
		offsets = append(offsets, b.Len())
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", len(offsets), body)
	}
	kids := make([]string, pages)
	for i := range kids {
		kids[i] = fmt.Sprintf("%d 0 R", i+3)
	}
	object("<< /Type /Catalog /Pages 2 0 R >>")
	object(fmt.Sprintf("<< /Type /Pages /Kids [%s] /Count %d >>", strings.Join(kids, " "), pages))
	for range pages {
		object("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>")
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(offsets)+1)
	for _, offset := range offsets {
		fmt.Fprintf(&b, "%010d 00000 n \n", offset)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(offsets)+1, xref)
	return b.Bytes()
}

// dxfFile is an ASCII DXF with a HEADER naming AutoCAD 2013, an empty TABLES
// section and the given entities.
func dxfFile(entities ...string) []byte {
	var b strings.Builder
	pair := func(code int, value string) { fmt.Fprintf(&b, "%3d\n%s\n", code, value) }
	pair(999, "made by the extractor's tests")
	pair(0, "SECTION")
	pair(2, "HEADER")
	pair(9, "$ACADVER")
	pair(1, "AC1027")
	pair(9, "$INSUNITS")
	pair(70, "4")
	pair(0, "ENDSEC")
	pair(0, "SECTION")
	pair(2, "TABLES")
	pair(0, "ENDSEC")
	pair(0, "SECTION")
	pair(2, "ENTITIES")
	for _, entity := range entities {
		pair(0, entity)
		pair(8, "0")
		pair(10, "1.5")
		pair(20, "2.5")
	}
	pair(0, "ENDSEC")
	pair(0, "EOF")
	return []byte(b.String())
}

// stepFile is an ISO 10303-21 file of the given schema and instances.
func stepFile(schema string, instances ...string) []byte {
	var b strings.Builder
	b.WriteString("ISO-10303-21;\nHEADER;\n")
	b.WriteString("FILE_DESCRIPTION(('ViewDefinition [CoordinationView]'),'2;1');\n")
	b.WriteString("FILE_NAME('model; with a semicolon.ifc','2024-01-01T00:00:00',('Tester'),(''),'tests','tests','');\n")
	fmt.Fprintf(&b, "FILE_SCHEMA(('%s'));\nENDSEC;\nDATA;\n", schema)
	for i, instance := range instances {
		fmt.Fprintf(&b, "#%d=%s;\n", i+1, instance)
	}
	b.WriteString("ENDSEC;\nEND-ISO-10303-21;\n")
	return []byte(b.String())
}

// ifcFile is a small IFC4 model.
func ifcFile() []byte {
	return stepFile("IFC4",
		"IFCPROJECT('0YvctVUKr0kugbFTf53O9L',$,'Project',$,$,$,$,$,$)",
		"IFCWALL('2O2Fr$t4X7Zf8NOew3FLOH',$,'Wall ''A''; north',$,$,$,$,$,$)",
		"IFCWALL('2O2Fr$t4X7Zf8NOew3FLOI',$,'Wall B',$,$,$,$,$,$)",
		"IFCDOOR('1hOSvn6df7F8_7GcBWlRGQ',$,'Door /* not a comment */',$,$,$,$,$,$,$,$,$,$)",
	)
}

// stepAP214File is a small STEP AP214 part with a complex instance.
func stepAP214File() []byte {
	return stepFile("AUTOMOTIVE_DESIGN { 1 0 10303 214 1 1 1 1 }",
		"CARTESIAN_POINT('',(0.,0.,0.))",
		"CARTESIAN_POINT('',(1.,0.,0.))",
		"DIRECTION('',(0.,0.,1.))",
		"(LENGTH_UNIT()NAMED_UNIT(*)SI_UNIT(.MILLI.,.METRE.))",
	)
}

func testImage(width, height int) image.Image {
	img := image.NewRGBA(image.Rect(0, 0, width, height))
	for x := range width {
		img.Set(x, x%height, color.Black)
	}
	return img
}

func pngFile(t testing.TB, width, height int) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, testImage(width, height)); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func jpegFile(t testing.TB, width, height int) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, testImage(width, height), nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// inspectInPieces feeds data to an inspector in pieces of the given size, as
// a download does, and returns what it made of the whole.
func inspectInPieces(insp inspector, data []byte, piece int) (any, error) {
	size := int64(len(data))
	for len(data) > 0 {
		n := min(piece, len(data))
		written, err := insp.Write(data[:n])
		if err != nil {
			return nil, err
		}
		if written != n {
			return nil, io.ErrShortWrite
		}
		data = data[n:]
	}
	return insp.finish(size)
}
