package main

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pybase/extraction-operator/api/podcontract"
)

// dxfLines joins group code and value lines as a DXF file.
func dxfLines(lines ...string) []byte {
	return []byte(strings.Join(lines, "\n") + "\n")
}

func TestDXFInspector(t *testing.T) {
	valid := dxfFile("LINE", "LINE", "CIRCLE", "TEXT")
	manyTypes := make([]string, 0, 40)
	for i := range 20 {
		// TYPE00 appears 20 times, TYPE01 19 times, and so on.
		for range 20 - i {
			manyTypes = append(manyTypes, fmt.Sprintf("TYPE%02d", i))
		}
	}
	tests := []struct {
		name        string
		data        []byte
		want        dxfSummary
		wantType    string
		wantMessage string
	}{
		{
			name: "a valid DXF reports its version, sections and entities by type",
			data: valid,
			want: dxfSummary{
				Version: "AC1027", Release: "2013", Sections: []string{"HEADER", "TABLES", "ENTITIES"},
				Entities: 4, EntityTypes: map[string]int{"LINE": 2, "CIRCLE": 1, "TEXT": 1},
			},
		},
		{
			name: "Windows line endings, a byte order mark and comments are fine",
			data: []byte("\xEF\xBB\xBF999\r\nsaved on Windows\r\n  0\r\nSECTION\r\n  2\r\nENTITIES\r\n999\r\na comment\r\n  0\r\nPOINT\r\n  0\r\nENDSEC\r\n  0\r\nEOF\r\n"),
			want: dxfSummary{Sections: []string{"ENTITIES"}, Entities: 1, EntityTypes: map[string]int{"POINT": 1}},
		},
		{
			name: "a last line without a newline is read",
			data: []byte("0\nSECTION\n2\nENTITIES\n0\nENDSEC\n0\nEOF"),
			want: dxfSummary{Sections: []string{"ENTITIES"}, EntityTypes: map[string]int{}},
		},
		{
			name: "anything after EOF is ignored",
			data: append(dxfLines("0", "SECTION", "2", "ENTITIES", "0", "ENDSEC", "0", "EOF"), "\x00\x01 trailing junk"...),
			want: dxfSummary{Sections: []string{"ENTITIES"}, EntityTypes: map[string]int{}},
		},
		{
			name: "only the 16 most frequent entity types are listed, and the rest are counted",
			data: dxfFile(manyTypes...),
			want: dxfSummary{
				Version: "AC1027", Release: "2013", Sections: []string{"HEADER", "TABLES", "ENTITIES"}, Entities: len(manyTypes),
				EntityTypes: func() map[string]int {
					top := map[string]int{}
					for i := range 16 {
						top[fmt.Sprintf("TYPE%02d", i)] = 20 - i
					}
					return top
				}(),
				OmittedEntityTypes: 4,
			},
		},
		{
			name: "entity types that are not names are counted as (other)",
			data: dxfFile("LINE", "<script>", strings.Repeat("X", 100)),
			want: dxfSummary{
				Version: "AC1027", Release: "2013", Sections: []string{"HEADER", "TABLES", "ENTITIES"}, Entities: 3,
				EntityTypes: map[string]int{"LINE": 1, otherTypes: 2},
			},
		},
		{name: "an empty file is CorruptedFile", data: nil, wantType: podcontract.CorruptedFile, wantMessage: "empty"},
		{name: "a file of one group code is CorruptedFile", data: []byte("0\n"), wantType: podcontract.CorruptedFile, wantMessage: "after its first line"},
		{name: "a PDF is InvalidFileType", data: minimalPDF(1), wantType: podcontract.InvalidFileType, wantMessage: "application/pdf"},
		{
			name: "group codes that do not start with a SECTION are InvalidFileType",
			data: dxfLines("0", "LINE"), wantType: podcontract.InvalidFileType, wantMessage: `does not start with a SECTION but with group 0, 4 bytes that look like text/plain`,
		},
		{
			name: "a DXF without EOF is CorruptedFile",
			data: dxfLines("0", "SECTION", "2", "ENTITIES", "0", "ENDSEC"), wantType: podcontract.CorruptedFile, wantMessage: "no EOF marker after section ENTITIES",
		},
		{
			name: "a DXF cut inside a section is CorruptedFile",
			data: dxfLines("0", "SECTION", "2", "ENTITIES", "0", "LINE"), wantType: podcontract.CorruptedFile, wantMessage: "ends inside section ENTITIES",
		},
		{
			name: "a DXF cut between a group code and its value is CorruptedFile",
			data: dxfLines("0", "SECTION", "2", "ENTITIES", "0"), wantType: podcontract.CorruptedFile, wantMessage: "group code 0 and no value",
		},
		{
			name: "a section without ENDSEC is CorruptedFile",
			data: dxfLines("0", "SECTION", "2", "HEADER", "0", "SECTION", "2", "ENTITIES"), wantType: podcontract.CorruptedFile, wantMessage: "SECTION inside section HEADER",
		},
		{
			name: "EOF inside a section is CorruptedFile",
			data: dxfLines("0", "SECTION", "2", "HEADER", "0", "EOF"), wantType: podcontract.CorruptedFile, wantMessage: "EOF inside section HEADER",
		},
		{
			name: "a SECTION without a name is CorruptedFile",
			data: dxfLines("0", "SECTION", "0", "ENDSEC"), wantType: podcontract.CorruptedFile, wantMessage: "without a name",
		},
		{
			name: "a group code that is not a number inside a DXF is CorruptedFile",
			data: dxfLines("0", "SECTION", "2", "ENTITIES", "zero", "LINE"), wantType: podcontract.CorruptedFile, wantMessage: `line 5 should be a group code, not 4 bytes that look like text/plain`,
		},
		{
			name: "a group outside any section is CorruptedFile",
			data: dxfLines("0", "SECTION", "2", "ENTITIES", "0", "ENDSEC", "0", "LINE"), wantType: podcontract.CorruptedFile, wantMessage: "outside any section",
		},
		{
			name: "a line longer than DXF allows is CorruptedFile",
			data: append(dxfLines("0", "SECTION", "2", "ENTITIES", "1"), strings.Repeat("x", dxfMaxLine+1)...), wantType: podcontract.CorruptedFile, wantMessage: "longer than",
		},
	}
	for _, tt := range tests {
		for _, piece := range pieceSizes {
			t.Run(fmt.Sprintf("%s, in pieces of %d", tt.name, piece), func(t *testing.T) {
				got, err := inspectInPieces(newDXFInspector(), tt.data, piece)
				if tt.wantType != "" {
					wantFailure(t, err, tt.wantType, tt.wantMessage)
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("got %+v, want %+v", got, tt.want)
				}
			})
		}
	}
}

func TestDXFInspectorBinary(t *testing.T) {
	// What ezdxf wrote: the drawing of make-fixtures.py in the modelspace,
	// the POLYLINE with its three VERTEX records and SEQEND; R12 has no
	// LWPOLYLINE, and no CLASSES or OBJECTS sections.
	want := map[string]dxfSummary{
		"plan-2018": {
			Version: "AC1032", Release: "2018", Sections: []string{"HEADER", "CLASSES", "TABLES", "BLOCKS", "ENTITIES", "OBJECTS"}, Entities: 12,
			EntityTypes: map[string]int{"LINE": 3, "CIRCLE": 1, "ARC": 1, "TEXT": 1, "POLYLINE": 1, "VERTEX": 3, "SEQEND": 1, "LWPOLYLINE": 1},
		},
		"plan-r12": {
			Version: "AC1009", Release: "R12", Sections: []string{"HEADER", "TABLES", "BLOCKS", "ENTITIES"}, Entities: 11,
			EntityTypes: map[string]int{"LINE": 3, "CIRCLE": 1, "ARC": 1, "TEXT": 1, "POLYLINE": 1, "VERTEX": 3, "SEQEND": 1},
		},
	}
	for drawing, want := range want {
		for _, encoding := range []string{"ascii", "binary"} {
			name := drawing + "-" + encoding + ".dxf"
			data := testdataFile(t, "dxf/"+name)
			for _, piece := range pieceSizes {
				t.Run(fmt.Sprintf("%s gives the summary of the drawing, in pieces of %d", name, piece), func(t *testing.T) {
					got, err := inspectInPieces(newDXFInspector(), data, piece)
					if err != nil {
						t.Fatal(err)
					}
					if diff := cmp.Diff(want, got); diff != "" {
						t.Errorf("summary (-want +got):\n%s", diff)
					}
				})
			}
		}
	}

	binary2018, binaryR12 := testdataFile(t, "dxf/plan-2018-binary.dxf"), testdataFile(t, "dxf/plan-r12-binary.dxf")
	tests := []struct {
		name        string
		data        []byte
		wantType    string
		wantMessage string
	}{
		{
			name: "a binary DXF cut in the middle is CorruptedFile", data: binary2018[:len(binary2018)/2],
			wantType: podcontract.CorruptedFile, wantMessage: "it is truncated",
		},
		{
			name: "an R12 binary DXF cut in the middle is CorruptedFile", data: binaryR12[:len(binaryR12)/2],
			wantType: podcontract.CorruptedFile, wantMessage: "it is truncated",
		},
		{
			name: "a binary DXF cut after its last ENDSEC is CorruptedFile", data: binary2018[:len(binary2018)-len("\x00\x00EOF\x00")],
			wantType: podcontract.CorruptedFile, wantMessage: "no EOF marker after section OBJECTS",
		},
		{
			name: "a binary DXF of the sentinel alone is CorruptedFile", data: []byte(dxfBinarySentinel),
			wantType: podcontract.CorruptedFile, wantMessage: "it has no SECTION",
		},
		{
			name: "a file cut inside the binary sentinel is CorruptedFile", data: []byte(dxfBinarySentinel[:10]),
			wantType: podcontract.CorruptedFile, wantMessage: "ends inside its header",
		},
		{
			name: "a binary DXF that does not start with a SECTION is CorruptedFile, not InvalidFileType", data: []byte(dxfBinarySentinel + "\x00\x00LINE\x00"),
			wantType: podcontract.CorruptedFile, wantMessage: `does not start with a SECTION but with group 0, 4 bytes that look like text/plain`,
		},
		{
			name: "a binary DXF with a group outside any section names its byte", data: []byte(dxfBinarySentinel + "\x00\x00SECTION\x00\x02\x00ENTITIES\x00\x00\x00ENDSEC\x00\x0a\x00\x00\x00\x00\x00\x00\x00\xf8\x3f"),
			wantType: podcontract.CorruptedFile, wantMessage: `byte 52: group 10, 3 bytes that look like text/plain, outside any section`,
		},
		{
			name: "a binary DXF string longer than DXF allows is CorruptedFile", data: append([]byte(dxfBinarySentinel+"\x00\x00SECTION\x00\x01\x00"), strings.Repeat("x", dxfMaxLine+1)...),
			wantType: podcontract.CorruptedFile, wantMessage: "a string longer than",
		},
	}
	for _, tt := range tests {
		for _, piece := range pieceSizes {
			t.Run(fmt.Sprintf("%s, in pieces of %d", tt.name, piece), func(t *testing.T) {
				_, err := inspectInPieces(newDXFInspector(), tt.data, piece)
				wantFailure(t, err, tt.wantType, tt.wantMessage)
			})
		}
	}
	t.Run("a binary chunk, a length byte and that many bytes, is skipped whole, zero bytes and all", func(t *testing.T) {
		data := []byte(dxfBinarySentinel + "\x00\x00SECTION\x00\x02\x00ENTITIES\x00\x00\x00LINE\x00" +
			"\x36\x01\x04\x00\x00\x00\x00" + // group 310, 4 bytes
			"\x00\x00ENDSEC\x00\x00\x00EOF\x00")
		for _, piece := range pieceSizes {
			got, err := inspectInPieces(newDXFInspector(), data, piece)
			if err != nil {
				t.Fatal(err)
			}
			want := dxfSummary{Sections: []string{"ENTITIES"}, Entities: 1, EntityTypes: map[string]int{"LINE": 1}}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("in pieces of %d, summary (-want +got):\n%s", piece, diff)
			}
		}
	})
	t.Run("anything after the EOF of a binary DXF is ignored", func(t *testing.T) {
		got, err := inspectInPieces(newDXFInspector(), append(bytes.Clone(binary2018), "\xff\xff junk"...), 7)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want["plan-2018"], got); diff != "" {
			t.Errorf("summary (-want +got):\n%s", diff)
		}
	})
}
