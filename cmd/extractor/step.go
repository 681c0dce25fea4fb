package main

import (
	"bytes"
	"regexp"
	"strings"

	"github.com/pybase/extraction-operator/api/podcontract"
)

const (
	stepMagic = "ISO-10303-21;"
	// stepMaxStatement is how much of a statement is kept: enough for any
	// header entry and for the start of an entity instance, which is all
	// that is read; instances with long coordinate lists are cut.
	stepMaxStatement = 4096
	stepMaxSchemas   = 4
	stepTopTypes     = 16
	stepComplex      = "(complex)"
)

var (
	stepFileSchema = regexp.MustCompile(`^FILE_SCHEMA[ \t\r\n]*\((?s:(.*))\)$`)
	stepString     = regexp.MustCompile(`'((?:[^']|'')*)'`)
)

// stepSummary is what an ISO 10303-21 file (STEP, IFC) shows in one pass.
type stepSummary struct {
	Schema             string         `json:"schema"`
	Entities           int            `json:"entities"`
	EntityTypes        map[string]int `json:"entityTypes"`
	OmittedEntityTypes int            `json:"omittedEntityTypes,omitempty"`
}

type stepSection int

const (
	stepStart     stepSection = iota // before ISO-10303-21;
	stepPreHeader                    // before HEADER;
	stepHeader
	stepBetween // between sections
	stepData
	stepOther // ANCHOR, REFERENCE, SIGNATURE: edition 3 sections, skipped
	stepEnd   // after END-ISO-10303-21; the rest is ignored
)

type stepLexState int

const (
	lexCode stepLexState = iota
	lexString
	lexComment
)

// stepInspector reads ISO 10303-21 statements, which end with ";" outside
// strings (in single quotes, a doubled quote standing for one) and
// comments (/* … */).
type stepInspector struct {
	ifc      bool // the declared format is IFC, so the schema must be one
	head     headBuffer
	decided  bool
	lex      stepLexState
	slash    bool // a "/" that may open a comment
	star     bool // a "*" that may close a comment
	quote    bool // a "'" that ends a string unless another follows
	stmt     []byte
	section  stepSection
	schemas  []string
	entities int
	counts   map[string]int
	err      error
}

func newSTEPInspector(ifc bool) *stepInspector {
	return &stepInspector{ifc: ifc, head: headBuffer{max: 512}, counts: map[string]int{}}
}

func (s *stepInspector) formatName() string {
	if s.ifc {
		return "an IFC file"
	}
	return "a STEP file"
}

func (s *stepInspector) Write(data []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	if !s.decided {
		s.head.write(data)
		start := bytes.TrimLeft(trimBOM(s.head.data), " \t\r\n")
		if len(start) >= len(stepMagic) || s.head.full() {
			if !bytes.HasPrefix(start, []byte(stepMagic)) {
				s.err = missingMagic(s.formatName(), start, stepMagic)
				return 0, s.err
			}
			s.decided = true
		}
	}
	if s.err = s.consume(data); s.err != nil {
		return 0, s.err
	}
	return len(data), nil
}

// consume lexes data. Runs of bytes that cannot change the lexer's state are
// kept in one go; feed handles the rest byte by byte. Files of some hundred
// megabytes are common, so this matters.
func (s *stepInspector) consume(data []byte) error {
	for len(data) > 0 && s.section != stepEnd {
		var run int
		switch {
		case s.lex == lexCode && !s.slash:
			run = bytes.IndexAny(data, "/';")
		case s.lex == lexString && !s.quote:
			run = bytes.IndexByte(data, '\'')
		default:
			run = 0
		}
		if run < 0 {
			run = len(data)
		}
		s.keepAll(data[:run])
		if data = data[run:]; len(data) == 0 {
			break
		}
		if err := s.feed(data[0]); err != nil {
			return err
		}
		data = data[1:]
	}
	return nil
}

func (s *stepInspector) feed(c byte) error {
	switch s.lex {
	case lexString:
		if s.quote {
			s.quote = false
			if c == '\'' {
				s.keep(c)
				return nil
			}
			s.lex = lexCode
			return s.feed(c)
		}
		s.keep(c)
		s.quote = c == '\''
	case lexComment:
		if s.star && c == '/' {
			s.lex, s.star = lexCode, false
			return nil
		}
		s.star = c == '*'
	case lexCode:
		if s.slash {
			s.slash = false
			if c == '*' {
				s.lex = lexComment
				return nil
			}
			s.keep('/')
		}
		switch c {
		case '/':
			s.slash = true
		case '\'':
			s.keep(c)
			s.lex = lexString
		case ';':
			return s.statement(strings.TrimSpace(string(s.stmt)))
		default:
			s.keep(c)
		}
	}
	return nil
}

func (s *stepInspector) keep(c byte) {
	if len(s.stmt) < stepMaxStatement {
		s.stmt = append(s.stmt, c)
	}
}

func (s *stepInspector) keepAll(run []byte) {
	if room := stepMaxStatement - len(s.stmt); room > 0 {
		s.stmt = append(s.stmt, run[:min(room, len(run))]...)
	}
}

func (s *stepInspector) statement(text string) error {
	s.stmt = s.stmt[:0]
	switch s.section {
	case stepStart:
		s.section = stepPreHeader // the magic check has seen ISO-10303-21
	case stepPreHeader:
		if text != "HEADER" {
			return fail(podcontract.CorruptedFile, nil, "expected HEADER; after ISO-10303-21; but found %s", describeText(text))
		}
		s.section = stepHeader
	case stepHeader:
		return s.headerStatement(text)
	case stepBetween:
		switch {
		case text == "DATA" || strings.HasPrefix(text, "DATA(") || strings.HasPrefix(text, "DATA "):
			s.section = stepData
		case text == "ANCHOR" || text == "REFERENCE" || text == "SIGNATURE":
			s.section = stepOther
		case text == "END-ISO-10303-21":
			s.section = stepEnd
		default:
			return fail(podcontract.CorruptedFile, nil, "expected a section or END-ISO-10303-21; but found %s", describeText(text))
		}
	case stepData:
		if text == "ENDSEC" {
			s.section = stepBetween
			return nil
		}
		typeName, ok := instanceType(text)
		if !ok {
			return fail(podcontract.CorruptedFile, nil, "the DATA section holds %s, which is not an entity instance", describeText(text))
		}
		s.entities++
		countType(s.counts, typeName)
	case stepOther:
		if text == "ENDSEC" {
			s.section = stepBetween
		}
	}
	return nil
}

func (s *stepInspector) headerStatement(text string) error {
	if m := stepFileSchema.FindStringSubmatch(text); m != nil {
		for _, name := range stepString.FindAllStringSubmatch(m[1], stepMaxSchemas) {
			s.schemas = append(s.schemas, oneLine(strings.ReplaceAll(name[1], "''", "'"), 128))
		}
		return nil
	}
	if text != "ENDSEC" {
		return nil
	}
	s.section = stepBetween
	if len(s.schemas) == 0 {
		return fail(podcontract.CorruptedFile, nil, "the HEADER section names no schema in FILE_SCHEMA")
	}
	// IFC is itself an ISO 10303-21 schema, so a STEP job may read an IFC
	// file; the reverse is a mix-up.
	if s.ifc && !strings.HasPrefix(strings.ToUpper(s.schemas[0]), "IFC") {
		return fail(podcontract.InvalidFileType, nil, "the file is a STEP file whose schema is not IFC, not an IFC file")
	}
	return nil
}

func (s *stepInspector) finish(int64) (any, error) {
	switch {
	case s.err != nil:
		return nil, s.err
	case !s.decided:
		return nil, missingMagic(s.formatName(), bytes.TrimLeft(trimBOM(s.head.data), " \t\r\n"), stepMagic)
	case s.section == stepEnd:
	case s.lex == lexString:
		return nil, fail(podcontract.CorruptedFile, nil, "the file ends inside a string: it is truncated")
	case s.lex == lexComment:
		return nil, fail(podcontract.CorruptedFile, nil, "the file ends inside a comment: it is truncated")
	case s.section == stepData:
		return nil, fail(podcontract.CorruptedFile, nil, "the file ends inside its DATA section, after %d entity instances: it is truncated", s.entities)
	default:
		return nil, fail(podcontract.CorruptedFile, nil, "the file has no END-ISO-10303-21;: it is truncated")
	}
	summary := stepSummary{Schema: strings.Join(s.schemas, ", "), Entities: s.entities}
	summary.EntityTypes, summary.OmittedEntityTypes = topTypes(s.counts, stepTopTypes)
	return summary, nil
}

// instanceType reads the type of an entity instance, "#12=IFCWALL(…)", or
// stepComplex for a complex one, "#12=(A(…)B(…))". It is a regular
// expression written out by hand, because it runs once per instance and
// models have millions of them.
func instanceType(text string) (typeName string, ok bool) {
	rest, ok := strings.CutPrefix(text, "#")
	digits := 0
	for digits < len(rest) && '0' <= rest[digits] && rest[digits] <= '9' {
		digits++
	}
	if !ok || digits == 0 {
		return "", false
	}
	rest, ok = strings.CutPrefix(strings.TrimLeft(rest[digits:], stepSpace), "=")
	if !ok {
		return "", false
	}
	rest = strings.TrimLeft(rest, stepSpace)
	if strings.HasPrefix(rest, "(") {
		return stepComplex, true
	}
	n := 0
	for n < len(rest) && isNameByte(rest[n], n == 0) {
		n++
	}
	if n == 0 {
		return "", false
	}
	return displayName(strings.ToUpper(rest[:n])), true
}

const stepSpace = " \t\r\n"

// isNameByte reports whether c may be part of a STEP entity name, which
// starts with a letter or underscore.
func isNameByte(c byte, first bool) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || c == '_' || !first && '0' <= c && c <= '9'
}
