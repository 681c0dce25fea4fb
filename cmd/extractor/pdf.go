package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/pdfcpu/pdfcpu/pkg/api"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/fault"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/model"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/validate"

	"github.com/pybase/extraction-operator/api/podcontract"
)

const (
	pdfMagic = "%PDF-"
	// pdfHeaderWindow is where the header may be: PDF readers accept up to
	// 1 KiB of junk before it (mail gateways prepend some), so this does too.
	pdfHeaderWindow = 1024
	// pdfTrailerWindow is where the last %%EOF must be. Readers look in the
	// last 1 KiB; twice that leaves room for trailing padding.
	pdfTrailerWindow = 2048
)

// pdfSummary is what pdfcpu reads of a PDF. Pages is nil when the PDF is
// encrypted with a user (open) password: without it nothing but the
// encryption dictionary can be read, which is all poppler's pdfinfo shows too.
type pdfSummary struct {
	Version       string `json:"version,omitempty"`
	Pages         *int   `json:"pages,omitempty"`
	Encrypted     bool   `json:"encrypted,omitempty"`
	ObjectStreams bool   `json:"objectStreams,omitempty"`
	Linearized    bool   `json:"linearized,omitempty"`
}

// pdfInspector checks a PDF with pdfcpu. pdfcpu reads from an io.ReadSeeker
// and holds the file's objects in memory, so unlike the other inspectors this
// one spools the stream to a scratch file (in $TMPDIR, the Pod's /tmp
// emptyDir; never more than maxBytes, which the reader in front of it
// enforces), and it needs memory of about the file's size while it reads it.
// The first bytes are still checked as they arrive, so that a download that
// is not a PDF stops early.
type pdfInspector struct {
	ctx      context.Context // bounds pdfcpu's reading by the run's timeout
	head     headBuffer
	tail     tailBuffer
	headerAt int // offset of %PDF- in head, or -1 while unknown
	spool    *os.File
}

func newPDFInspector(ctx context.Context) *pdfInspector {
	return &pdfInspector{
		ctx:      ctx,
		head:     headBuffer{max: pdfHeaderWindow},
		tail:     tailBuffer{max: pdfTrailerWindow},
		headerAt: -1,
	}
}

func (p *pdfInspector) Write(data []byte) (int, error) {
	p.head.write(data)
	if p.headerAt < 0 {
		p.headerAt = bytes.Index(p.head.data, []byte(pdfMagic))
		if p.headerAt < 0 && p.head.full() {
			return 0, missingMagic("a PDF", p.head.data, pdfMagic)
		}
	}
	p.tail.write(data)
	if p.spool == nil {
		spool, err := newSpoolFile()
		if err != nil {
			return 0, err
		}
		p.spool = spool
	}
	if _, err := p.spool.Write(data); err != nil {
		return 0, fail(podcontract.IOError, err, "spooling the PDF to %s: %v", os.TempDir(), err)
	}
	return len(data), nil
}

// newSpoolFile creates a scratch file that is already unlinked, so it goes
// away with its descriptor however the process ends.
func newSpoolFile() (*os.File, error) {
	f, err := os.CreateTemp("", "extractor-*.pdf")
	if err != nil {
		return nil, fail(podcontract.IOError, err, "creating a scratch file for the PDF in %s: %v", os.TempDir(), err)
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, fail(podcontract.IOError, err, "unlinking the scratch file of the PDF: %v", err)
	}
	return f, nil
}

// Close releases the scratch file; extract calls it however the run ends.
func (p *pdfInspector) Close() error {
	if p.spool == nil {
		return nil
	}
	err := p.spool.Close()
	p.spool = nil
	return err
}

func (p *pdfInspector) finish(int64) (any, error) {
	defer p.Close()
	if p.headerAt < 0 {
		return nil, missingMagic("a PDF", p.head.data, pdfMagic)
	}
	// The trailer is written last, so a file cut short has lost it. pdfcpu,
	// like poppler, would rebuild the cross-reference table of such a file
	// and read what is left; a truncated upload is reported instead.
	if !bytes.Contains(p.tail.data, []byte("%%EOF")) {
		return nil, fail(podcontract.CorruptedFile, nil, "the PDF has no %%%%EOF marker in its last %d bytes: it is truncated", pdfTrailerWindow)
	}
	if _, err := p.spool.Seek(0, io.SeekStart); err != nil {
		return nil, fail(podcontract.IOError, err, "rewinding the scratch file of the PDF: %v", err)
	}
	doc, err := readPDF(p.ctx, p.spool)
	switch {
	case errors.Is(err, pdfcpu.ErrWrongPassword):
		return pdfSummary{Encrypted: true}, nil
	case err != nil:
		if ctxErr := contextFailure(p.ctx, "reading the PDF"); ctxErr != nil {
			return nil, ctxErr
		}
		var f *failure
		if errors.As(err, &f) {
			return nil, f
		}
		return nil, fail(podcontract.CorruptedFile, err, "the PDF is broken: pdfcpu could not read or validate it")
	}
	pages := doc.PageCount
	return pdfSummary{
		Version:       doc.XRefTable.Version().String(),
		Pages:         &pages,
		Encrypted:     doc.Encrypt != nil,
		ObjectStreams: doc.Read.UsingObjectStreams,
		Linearized:    doc.Read.Linearized,
	}, nil
}

var disablePDFConfigDir sync.Once

// readPDF reads and validates a PDF with pdfcpu's relaxed validation, the
// mode meant for files from the wild; validation also counts the pages.
func readPDF(ctx context.Context, rs io.ReadSeeker) (doc *model.Context, err error) {
	// By default pdfcpu writes a configuration file to the user's config
	// directory, which the read-only root file system of the Pod does not have.
	disablePDFConfigDir.Do(api.DisableConfigDir)
	// pdfcpu reports some failures by panicking with a fault.Panic, which
	// fault.Catch turns back into the error. Any other panic is a bug that
	// this file exposed; it is reported as one rather than crashing without a
	// termination message.
	defer func() {
		if r := recover(); r != nil {
			if p, ok := r.(fault.Panic); ok {
				err = p
				return
			}
			err = fail(podcontract.InternalError, nil, "pdfcpu failed on this PDF with a panic (%T)", r)
		}
	}()
	doc, err = pdfcpu.ReadWithContext(ctx, rs, model.NewDefaultConfiguration())
	if err != nil {
		return nil, err
	}
	if err := validate.XRefTable(doc); err != nil {
		return nil, fmt.Errorf("validating: %w", err)
	}
	return doc, nil
}
