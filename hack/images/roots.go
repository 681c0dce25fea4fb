package main

import (
	"bytes"
	"encoding/pem"

	"golang.org/x/crypto/x509roots/fallback/bundle"
)

// caRootsPEM is the PEM bundle of the Mozilla roots that
// golang.org/x/crypto/x509roots/fallback embeds, in its order: taken from a
// pinned module rather than the build machine, so that the image's digest
// does not depend on the host. A root with a constraint (a distrust-after
// date) is left out: a PEM file cannot carry the constraint, and trusting
// such a root without it would trust more than Mozilla does.
func caRootsPEM() []byte {
	var roots bytes.Buffer
	for root := range bundle.Roots() {
		if root.Constraint != nil {
			continue
		}
		// Writing PEM to a bytes.Buffer cannot fail.
		_ = pem.Encode(&roots, &pem.Block{Type: "CERTIFICATE", Bytes: root.Certificate})
	}
	return roots.Bytes()
}
