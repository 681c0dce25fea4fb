#!/bin/sh
# Makes the PDF fixtures of the extractor's tests with real tools, and records
# what poppler's pdfinfo, an independent reader, says of each. The tests read
# the committed *.pdfinfo.txt files, so they need none of these tools.
#
# Needs Debian's ghostscript, qpdf and poppler-utils:
#   apt-get install -y ghostscript qpdf poppler-utils
# Run it in this directory: sh make-fixtures.sh
set -eu

# pages.ps draws one page per argument, each with a different number of boxes,
# so that merged files show whose pages they hold. No text: fonts would make
# the files large.
cat > /tmp/pages.ps <<'PS'
%!PS
/page { % n page -
  /n exch def
  0 1 n 1 sub { 72 mul 72 add 72 36 36 rectfill } for
  showpage
} def
PS

ps() { # ps N... : a PostScript program of pages with N boxes each
  cat /tmp/pages.ps
  for n in "$@"; do echo "$n page"; done
}

# Ghostscript writes classic cross-reference tables, no object streams.
ps 1 2 3 > /tmp/three.ps
gs -q -dSAFER -dBATCH -dNOPAUSE -sDEVICE=pdfwrite -dCompatibilityLevel=1.4 -o ghostscript-3-pages.pdf /tmp/three.ps
ps 4 5 > /tmp/two.ps
gs -q -dSAFER -dBATCH -dNOPAUSE -sDEVICE=pdfwrite -dCompatibilityLevel=1.7 -o ghostscript-2-pages.pdf /tmp/two.ps

# qpdf moves every object it can, the page objects among them, into object
# streams, indexed by a cross-reference stream: the regular expressions of the
# old reader found no page in such a file.
qpdf --object-streams=generate ghostscript-3-pages.pdf qpdf-object-streams.pdf

# Linearized ("fast web view"): a first-page cross-reference section at the
# start and hint streams.
qpdf --linearize ghostscript-3-pages.pdf qpdf-linearized.pdf
qpdf --linearize --object-streams=generate ghostscript-3-pages.pdf qpdf-linearized-object-streams.pdf

# Merged from two files, with object streams.
qpdf --empty --object-streams=generate --pages ghostscript-3-pages.pdf ghostscript-2-pages.pdf -- qpdf-merged-5-pages.pdf

# Encrypted with AES-256. A user (open) password hides everything but the
# encryption dictionary; with only an owner password, any reader opens it.
qpdf --encrypt user-secret owner-secret 256 -- ghostscript-3-pages.pdf qpdf-encrypted-user-password.pdf
qpdf --encrypt "" owner-secret 256 -- ghostscript-2-pages.pdf qpdf-encrypted-owner-password.pdf

rm -f /tmp/pages.ps /tmp/three.ps /tmp/two.ps

# pdfinfo cannot open the file with a user password without it ("Incorrect
# password"), which is what the test expects of the extractor too; with the
# password it tells its version and pages, kept in *.upw.pdfinfo.txt.
for f in *.pdf; do
  pdfinfo "$f" > "${f%.pdf}.pdfinfo.txt" 2>&1 || true
done
pdfinfo -upw user-secret qpdf-encrypted-user-password.pdf > qpdf-encrypted-user-password.upw.pdfinfo.txt
