package main

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/pybase/extraction-operator/api/podcontract"
)

func TestSTEPInspector(t *testing.T) {
	ifc, ap214 := ifcFile(), stepAP214File()
	tests := []struct {
		name        string
		ifc         bool
		data        []byte
		want        stepSummary
		wantType    string
		wantMessage string
	}{
		{
			name: "an IFC model reports its schema and entities, whatever semicolons, quotes and comment marks its strings hold",
			ifc:  true, data: ifc,
			want: stepSummary{Schema: "IFC4", Entities: 4, EntityTypes: map[string]int{"IFCPROJECT": 1, "IFCWALL": 2, "IFCDOOR": 1}},
		},
		{
			name: "a STEP part counts complex instances as (complex)",
			data: ap214,
			want: stepSummary{
				Schema: "AUTOMOTIVE_DESIGN { 1 0 10303 214 1 1 1 1 }", Entities: 4,
				EntityTypes: map[string]int{"CARTESIAN_POINT": 2, "DIRECTION": 1, stepComplex: 1},
			},
		},
		{
			name: "a STEP job accepts an IFC model, IFC being a STEP schema",
			data: ifc,
			want: stepSummary{Schema: "IFC4", Entities: 4, EntityTypes: map[string]int{"IFCPROJECT": 1, "IFCWALL": 2, "IFCDOOR": 1}},
		},
		{
			name: "comments, spacing, lower case types and several schemas are understood",
			data: []byte("\xEF\xBB\xBF\n ISO-10303-21;\n/* exported; by hand */HEADER;\nFILE_SCHEMA (('CONFIG_CONTROL_DESIGN', 'IT''S'));\nENDSEC;\n" +
				"DATA;\n#1 = cartesian_point('', (0., 0., 0.));\n/* #2=NOT_AN_INSTANCE(); */\n#3=CARTESIAN_POINT('a '';'' b',(1.,0.,0.));\nENDSEC;\nEND-ISO-10303-21;\n"),
			want: stepSummary{Schema: "CONFIG_CONTROL_DESIGN, IT'S", Entities: 2, EntityTypes: map[string]int{"CARTESIAN_POINT": 2}},
		},
		{
			name: "several DATA sections, edition 3 style, are all counted",
			data: []byte("ISO-10303-21;\nHEADER;\nFILE_SCHEMA(('AP242_MANAGED_MODEL_BASED_3D_ENGINEERING_MIM_LF'));\nENDSEC;\n" +
				"DATA('first',('AP242'));\n#1=SHAPE();\nENDSEC;\nDATA;\n#2=SHAPE();\nENDSEC;\nEND-ISO-10303-21;\n"),
			want: stepSummary{Schema: "AP242_MANAGED_MODEL_BASED_3D_ENGINEERING_MIM_LF", Entities: 2, EntityTypes: map[string]int{"SHAPE": 2}},
		},
		{
			name: "an instance longer than what is kept of a statement is still counted",
			data: stepFile("IFC4", "IFCCARTESIANPOINTLIST3D(("+strings.Repeat("(0.,0.,0.),", 1000)+"(1.,1.,1.)))"),
			ifc:  true,
			want: stepSummary{Schema: "IFC4", Entities: 1, EntityTypes: map[string]int{"IFCCARTESIANPOINTLIST3D": 1}},
		},
		{name: "an empty file is CorruptedFile", data: nil, wantType: podcontract.CorruptedFile, wantMessage: "empty"},
		{name: "a file cut inside the magic is CorruptedFile", data: []byte("ISO-103"), wantType: podcontract.CorruptedFile, wantMessage: "ends inside its header"},
		{name: "a DXF is InvalidFileType", data: dxfFile("LINE"), wantType: podcontract.InvalidFileType, wantMessage: `no "ISO-10303-21;" header`},
		{
			name: "an IFC job refuses a STEP part as InvalidFileType", ifc: true, data: ap214,
			wantType: podcontract.InvalidFileType, wantMessage: `a STEP file whose schema is not IFC`,
		},
		{
			name: "a file cut in its DATA section is CorruptedFile", data: []byte(strings.TrimSuffix(string(ap214), "ENDSEC;\nEND-ISO-10303-21;\n")),
			wantType: podcontract.CorruptedFile, wantMessage: "ends inside its DATA section, after 4 entity instances",
		},
		{
			name: "a file cut inside a string is CorruptedFile", data: ifc[:strings.Index(string(ifc), "north")],
			wantType: podcontract.CorruptedFile, wantMessage: "inside a string",
		},
		{
			name: "a file cut inside a comment is CorruptedFile", data: []byte("ISO-10303-21;\nHEADER;\n/* a comment that never ends"),
			wantType: podcontract.CorruptedFile, wantMessage: "inside a comment",
		},
		{
			name: "a file without END-ISO-10303-21 is CorruptedFile", data: []byte(strings.TrimSuffix(string(ap214), "END-ISO-10303-21;\n")),
			wantType: podcontract.CorruptedFile, wantMessage: "no END-ISO-10303-21",
		},
		{
			name: "a header without FILE_SCHEMA is CorruptedFile", data: []byte("ISO-10303-21;\nHEADER;\nFILE_NAME('a');\nENDSEC;\n"),
			wantType: podcontract.CorruptedFile, wantMessage: "names no schema",
		},
		{
			name: "a missing HEADER is CorruptedFile", data: []byte("ISO-10303-21;\nDATA;\nENDSEC;\nEND-ISO-10303-21;\n"),
			wantType: podcontract.CorruptedFile, wantMessage: "expected HEADER",
		},
		{
			name:     "something other than an instance in DATA is CorruptedFile",
			data:     []byte("ISO-10303-21;\nHEADER;\nFILE_SCHEMA(('X'));\nENDSEC;\nDATA;\ngarbage here;\nENDSEC;\nEND-ISO-10303-21;\n"),
			wantType: podcontract.CorruptedFile, wantMessage: `holds 12 bytes that look like text/plain, which is not an entity instance`,
		},
	}
	for _, tt := range tests {
		for _, piece := range pieceSizes {
			t.Run(fmt.Sprintf("%s, in pieces of %d", tt.name, piece), func(t *testing.T) {
				got, err := inspectInPieces(newSTEPInspector(tt.ifc), tt.data, piece)
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

// BenchmarkSTEPInspector measures the lexer, which sees every byte of models
// that often weigh hundreds of megabytes.
func BenchmarkSTEPInspector(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("ISO-10303-21;\nHEADER;\nFILE_SCHEMA(('IFC4'));\nENDSEC;\nDATA;\n")
	for i := range 200000 {
		fmt.Fprintf(&sb, "#%d=IFCCARTESIANPOINT((1.0,2.0,3.0),'a;b');\n", i+1)
	}
	sb.WriteString("ENDSEC;\nEND-ISO-10303-21;\n")
	data := []byte(sb.String())
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := inspectInPieces(newSTEPInspector(true), data, 32<<10); err != nil {
			b.Fatal(err)
		}
	}
}
